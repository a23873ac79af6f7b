// Prints vitest JSON reports as plain lines: one per report ("node24: N passed, N failed") and,
// last, the closing line for all of them together ("tests: N passed, N failed").
// Usage: node scripts/test-summary.mjs REPORT.json [REPORT.json ...]
import { readFileSync } from "node:fs";
import { basename } from "node:path";

const paths = process.argv.slice(2);
if (paths.length === 0) paths.push(".vitest-report.json");
const line = (label, passed, failed, skipped) => `${label}: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`;
let passed = 0;
let failed = 0;
let skipped = 0;
let unreadable = 0;
for (const path of paths) {
  let report;
  try {
    report = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    console.error(`test-summary: cannot read ${path}: ${error.message}`);
    unreadable += 1;
    continue;
  }
  const reportSkipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  if (paths.length > 1) {
    const label =
      basename(path)
        .replace(/^\.?vitest-report-?/, "")
        .replace(/\.json$/, "") || "report";
    console.log(line(label, report.numPassedTests, report.numFailedTests, reportSkipped));
  }
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += reportSkipped;
}
console.log(line("tests", passed, failed, skipped));
process.exit(unreadable > 0 ? 1 : 0);
