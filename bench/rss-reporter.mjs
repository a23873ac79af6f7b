/**
 * Preloaded into the measured hoard process with `node --import`: when the process exits, writes
 * to the file named by HOARD_BENCH_RSS_FILE, as JSON, its peak resident set size in KiB
 * (`process.resourceUsage().maxRSS`, the kernel's ru_maxrss for this process alone, child
 * processes not included) and its user and system CPU time in microseconds. The variable is
 * removed from the environment at once so that no child process inherits it.
 */
import { writeFileSync } from "node:fs";

const reportFile = process.env.HOARD_BENCH_RSS_FILE;
delete process.env.HOARD_BENCH_RSS_FILE;

if (reportFile) {
  process.on("exit", () => {
    const usage = process.resourceUsage();
    const report = {
      maxRssKilobytes: usage.maxRSS,
      userCpuMicroseconds: usage.userCPUTime,
      systemCpuMicroseconds: usage.systemCPUTime,
    };
    writeFileSync(reportFile, `${JSON.stringify(report)}\n`);
  });
}
