// Prints vitest JSON reports as plain lines: one per report ("node24: N passed, N failed") and,
// last, the closing line for all of them together ("tests: N passed, N failed"). Before those, every
// failed test and every test file that failed to run gets a line with the first lines of its error,
// so a CI log whose head is cut off still names what failed.
// Usage: node scripts/test-summary.mjs REPORT.json [REPORT.json ...]
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { stripVTControlCharacters } from "node:util";

const paths = process.argv.slice(2);
if (paths.length === 0) paths.push(".vitest-report.json");
const failureLines = (message) =>
  stripVTControlCharacters(String(message ?? ""))
    .split("\n")
    .map((text) => text.trim())
    .filter((text) => text !== "")
    .slice(0, 4)
    .map((text) => `    ${text.slice(0, 300)}`);
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
  const label =
    basename(path)
      .replace(/^\.?vitest-report-?/, "")
      .replace(/\.json$/, "") || "report";
  for (const file of report.testResults ?? []) {
    const failedTests = (file.assertionResults ?? []).filter((test) => test.status === "failed");
    for (const test of failedTests) {
      console.log(`FAILED ${label}: ${file.name} > ${test.fullName ?? test.title}`);
      for (const text of failureLines((test.failureMessages ?? [])[0])) console.log(text);
    }
    if (file.status === "failed" && failedTests.length === 0) {
      console.log(`FAILED ${label}: ${file.name} (the file did not run)`);
      for (const text of failureLines(file.message)) console.log(text);
    }
  }
  const reportSkipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  if (paths.length > 1) {
    console.log(line(label, report.numPassedTests, report.numFailedTests, reportSkipped));
  }
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += reportSkipped;
}
console.log(line("tests", passed, failed, skipped));
process.exit(unreadable > 0 ? 1 : 0);
