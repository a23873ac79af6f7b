import type { ProcessPeak } from "./process-memory.ts";

/** The peaks, CPU times and output size of a run, and of a summary of runs. */
interface Measures {
  /** ru_maxrss of hoard's Node.js process, KiB (hoard variants only). */
  nodePeakKilobytes?: number;
  nodeCpuSeconds?: number;
  /** VmHWM of pg_dump, KiB, sampled from /proc. */
  pgDumpPeakKilobytes?: number;
  pgDumpCpuSeconds?: number;
  /** VmHWM of gzip, KiB, sampled from /proc (pipelines with gzip only). */
  gzipPeakKilobytes?: number;
  gzipCpuSeconds?: number;
  outputBytes?: number;
}

/** One run of one variant. */
export interface Sample extends Measures {
  wallSeconds: number;
  processes: ProcessPeak[];
  /** Busy share of all CPUs (0-1) in the second before the run: work of others on the machine. */
  busyBefore?: number;
  /** Set when the run failed; the other numbers are then meaningless. */
  error?: string;
}

/** The runs of one variant folded into one row: median times and sizes, the highest peaks. */
export interface Summary extends Measures {
  runs: number;
  failures: number;
  wallSeconds?: number;
  wallSecondsLowest?: number;
  wallSecondsHighest?: number;
}

/** All runs of one variant at one size. */
export interface VariantResult {
  id: string;
  label: string;
  kind: "hoard" | "plain";
  /** True for the plain pipelines the wall-time target compares against. */
  baseline: boolean;
  samples: Sample[];
  summary: Summary;
}

/** One target from the issue and whether this size met it; `skip` when what it compares was not run. */
export interface TargetCheck {
  description: string;
  status: "pass" | "fail" | "skip";
}

function statusOf(passed: boolean): TargetCheck["status"] {
  return passed ? "pass" : "fail";
}

/** Everything measured for one database size. */
export interface SizeResult {
  sizeMegabytes: number;
  database: { name: string; sizeBytes: number; reused: boolean; generationSeconds: number };
  /** Bytes of `pg_dump -Fc -Z0`: what hoard compresses, the base of the ratio column. */
  uncompressedDumpBytes: number;
  /** 1, 5 and 15 minute load averages just before the runs (other work on the machine skews times). */
  loadAverageBefore: number[];
  variants: VariantResult[];
  targets: TargetCheck[];
}

/** Limits from the issue. */
/** Stream mode's peak RSS limit: 150 MiB to local storage (the walking-skeleton issue), 200 MiB to S3 or GCS (the storage issue). */
export function streamPeakLimitMegabytes(storageName: string): number {
  return storageName === "local" ? 150 : 200;
}
export const wallTimeLimitFactor = 1.2;
/** Encrypted stream backups (issue 9): wall time within 1.15x of the unencrypted stream backup, peak RSS within 10 MiB of it. */
export const encryptedWallFactor = 1.15;
export const encryptedPeakToleranceMegabytes = 10;

const kilobytesPerMegabyte = 1024;
const bytesPerMegabyte = 1024 * 1024;

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((left, right) => left - right);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function highest(values: number[]): number | undefined {
  return values.length === 0 ? undefined : Math.max(...values);
}

function defined(values: (number | undefined)[]): number[] {
  return values.filter((value): value is number => value !== undefined);
}

/** Folds the runs of a variant: medians for time, CPU and size, maxima for memory. */
export function summarize(samples: readonly Sample[]): Summary {
  const good = samples.filter((sample) => sample.error === undefined);
  const walls = good.map((sample) => sample.wallSeconds);
  const pick = (select: (sample: Sample) => number | undefined) => defined(good.map(select));
  return {
    runs: samples.length,
    failures: samples.length - good.length,
    wallSeconds: median(walls),
    wallSecondsLowest: walls.length === 0 ? undefined : Math.min(...walls),
    wallSecondsHighest: highest(walls),
    nodePeakKilobytes: highest(pick((sample) => sample.nodePeakKilobytes)),
    nodeCpuSeconds: median(pick((sample) => sample.nodeCpuSeconds)),
    pgDumpPeakKilobytes: highest(pick((sample) => sample.pgDumpPeakKilobytes)),
    pgDumpCpuSeconds: median(pick((sample) => sample.pgDumpCpuSeconds)),
    gzipPeakKilobytes: highest(pick((sample) => sample.gzipPeakKilobytes)),
    gzipCpuSeconds: median(pick((sample) => sample.gzipCpuSeconds)),
    outputBytes: median(pick((sample) => sample.outputBytes)),
  };
}

/** The baseline with the lowest median wall time. */
export function fastestBaseline(variants: readonly VariantResult[]): VariantResult | undefined {
  return variants
    .filter((variant) => variant.baseline && variant.summary.wallSeconds !== undefined)
    .sort((left, right) => (left.summary.wallSeconds as number) - (right.summary.wallSeconds as number))[0];
}

/**
 * Checks hoard's stream mode against the issues' targets: peak RSS under 150 MiB to local storage
 * (200 MiB to S3 or GCS), wall time within 1.2x the faster plain pipeline.
 */
export function checkTargets(sizeMegabytes: number, variants: readonly VariantResult[], storageName = "local"): TargetCheck[] {
  const peakLimit = streamPeakLimitMegabytes(storageName);
  const stream = variants.find((variant) => variant.id === "hoard-stream");
  if (stream === undefined) return [];
  const at = `${sizeMegabytes} MiB`;
  const checks: TargetCheck[] = [];
  const peak = stream.summary.nodePeakKilobytes;
  checks.push({
    description:
      peak === undefined
        ? `${at}: hoard stream peak RSS not measured (every run failed)`
        : `${at}: hoard stream peak RSS ${formatMegabytes(peak / kilobytesPerMegabyte)} MiB < ${peakLimit} MiB (${storageName})`,
    status: statusOf(peak !== undefined && peak / kilobytesPerMegabyte < peakLimit),
  });
  const baseline = fastestBaseline(variants);
  const wall = stream.summary.wallSeconds;
  if (baseline?.summary.wallSeconds !== undefined && wall !== undefined) {
    const limit = baseline.summary.wallSeconds * wallTimeLimitFactor;
    checks.push({
      description: `${at}: hoard stream wall ${wall.toFixed(2)} s <= ${wallTimeLimitFactor} x ${baseline.summary.wallSeconds.toFixed(2)} s (${baseline.label}) = ${limit.toFixed(2)} s (ratio ${(wall / baseline.summary.wallSeconds).toFixed(2)})`,
      status: statusOf(wall <= limit),
    });
  } else {
    const reason = baseline === undefined ? "no plain pipeline ran (see --variants)" : "every hoard stream run failed";
    checks.push({ description: `${at}: hoard stream wall time not compared: ${reason}`, status: baseline === undefined ? "skip" : "fail" });
  }
  const encrypted = variants.find((variant) => variant.id === "hoard-stream-age");
  if (encrypted !== undefined) checks.push(...encryptionChecks(at, stream, encrypted));
  return checks;
}

/** The encrypted stream backup against the unencrypted one: wall time and peak RSS. */
function encryptionChecks(at: string, stream: VariantResult, encrypted: VariantResult): TargetCheck[] {
  const plainWall = stream.summary.wallSeconds;
  const wall = encrypted.summary.wallSeconds;
  const plainPeak = stream.summary.nodePeakKilobytes;
  const peak = encrypted.summary.nodePeakKilobytes;
  if (plainWall === undefined || wall === undefined || plainPeak === undefined || peak === undefined) {
    return [{ description: `${at}: encrypted stream backup not compared: every run of one of them failed`, status: "fail" }];
  }
  const limit = plainWall * encryptedWallFactor;
  const difference = (peak - plainPeak) / kilobytesPerMegabyte;
  return [
    {
      description: `${at}: hoard stream age-encrypted wall ${wall.toFixed(2)} s <= ${encryptedWallFactor} x ${plainWall.toFixed(2)} s (unencrypted) = ${limit.toFixed(2)} s (ratio ${(wall / plainWall).toFixed(2)})`,
      status: statusOf(wall <= limit),
    },
    {
      description: `${at}: hoard stream age-encrypted peak RSS ${formatKilobytes(peak)} MiB within ${encryptedPeakToleranceMegabytes} MiB of unencrypted ${formatKilobytes(plainPeak)} MiB (difference ${difference >= 0 ? "+" : ""}${difference.toFixed(1)} MiB)`,
      status: statusOf(Math.abs(difference) <= encryptedPeakToleranceMegabytes),
    },
  ];
}

function formatMegabytes(megabytes: number | undefined): string {
  return megabytes === undefined ? "-" : megabytes.toFixed(1);
}

function formatKilobytes(kilobytes: number | undefined): string {
  return kilobytes === undefined ? "-" : formatMegabytes(kilobytes / kilobytesPerMegabyte);
}

function formatSeconds(seconds: number | undefined): string {
  return seconds === undefined ? "-" : seconds.toFixed(2);
}

/** `node / pg_dump / gzip` CPU seconds, with `-` for a process the variant does not have. */
function formatCpu(summary: Summary): string {
  return [summary.nodeCpuSeconds, summary.pgDumpCpuSeconds, summary.gzipCpuSeconds]
    .map((seconds) => (seconds === undefined ? "-" : seconds.toFixed(1)))
    .join(" / ");
}

function formatWall(summary: Summary): string {
  if (summary.wallSeconds === undefined) return "failed";
  const spread = summary.runs > 1 ? ` (${formatSeconds(summary.wallSecondsLowest)}-${formatSeconds(summary.wallSecondsHighest)})` : "";
  const failures = summary.failures > 0 ? `, ${summary.failures} failed` : "";
  return `${formatSeconds(summary.wallSeconds)}${spread}${failures}`;
}

/** A pipe inside a markdown table cell must be escaped, or it starts a new cell. */
function escapeCell(text: string): string {
  return text.replaceAll("|", "\\|");
}

function tableRow(size: SizeResult, variant: VariantResult, fastest: number | undefined): string {
  const { summary } = variant;
  const relative = fastest !== undefined && summary.wallSeconds !== undefined ? `${(summary.wallSeconds / fastest).toFixed(2)}x` : "-";
  const ratio = summary.outputBytes ? `${(size.uncompressedDumpBytes / summary.outputBytes).toFixed(2)}` : "-";
  const output = summary.outputBytes === undefined ? "-" : formatMegabytes(summary.outputBytes / bytesPerMegabyte);
  return `| ${size.sizeMegabytes} MiB | ${escapeCell(variant.label)} | ${formatWall(summary)} | ${relative} | ${formatKilobytes(summary.nodePeakKilobytes)} | ${formatKilobytes(summary.pgDumpPeakKilobytes)} | ${formatKilobytes(summary.gzipPeakKilobytes)} | ${formatCpu(summary)} | ${output} | ${ratio} |`;
}

/** The results as one markdown table, a row per size and variant. */
export function markdownTable(sizes: readonly SizeResult[]): string {
  const lines = [
    "| Database | Variant | Wall s, median (range) | vs fastest plain | hoard Node peak RSS MiB | pg_dump peak RSS MiB | gzip peak RSS MiB | CPU s node / pg_dump / gzip | Output MiB | Ratio |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const size of sizes) {
    const fastest = fastestBaseline(size.variants)?.summary.wallSeconds;
    for (const variant of size.variants) lines.push(tableRow(size, variant, fastest));
  }
  return lines.join("\n");
}

/** One line per target: `PASS ...`, `FAIL ...` or `SKIP ...`. */
export function targetLines(sizes: readonly SizeResult[]): string[] {
  return sizes.flatMap((size) => size.targets.map((check) => `${check.status.toUpperCase()} ${check.description}`));
}

/** How busy the machine was before the runs of one size: median and highest busy share, in percent. */
function busyDescription(size: SizeResult): string {
  const busy = defined(size.variants.flatMap((variant) => variant.samples.map((sample) => sample.busyBefore)));
  if (busy.length === 0) return "";
  const percent = (fraction: number | undefined) => `${((fraction ?? 0) * 100).toFixed(0)}%`;
  return `; CPUs busy with other work before each run: median ${percent(median(busy))}, highest ${percent(highest(busy))}`;
}

/** A short description of each database: size on disk, dump size, how busy the machine was. */
export function databaseLines(sizes: readonly SizeResult[]): string[] {
  return sizes.map(
    (size) =>
      `- ${size.database.name}: ${formatMegabytes(size.database.sizeBytes / bytesPerMegabyte)} MiB on disk, ` +
      `pg_dump -Fc -Z0 ${formatMegabytes(size.uncompressedDumpBytes / bytesPerMegabyte)} MiB` +
      `${size.database.reused ? " (reused)" : `, generated in ${size.database.generationSeconds.toFixed(0)} s`}; ` +
      `load average before: ${size.loadAverageBefore.map((load) => load.toFixed(2)).join(" ")}${busyDescription(size)}`,
  );
}
