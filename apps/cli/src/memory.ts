import { setFlagsFromString } from "node:v8";

/**
 * Keeps V8's young generation at its starting size (1 MiB semi-spaces) for the whole run.
 *
 * A backup or restore moves gigabytes through short-lived chunks, and at that allocation rate V8
 * grows the young generation to its largest (16 MiB per semi-space on 64-bit Node.js 22 and 24),
 * which stays committed: the peak RSS of a default stream backup of the 1 GiB benchmark database
 * went from 96-98 MiB to 122 MiB, and at 5 GiB to 160 MiB, for no speed (the CPU time is the same
 * either way; docs/benchmarks.md). `--max-semi-space-size` would say so at start-up, but hoard is
 * started by a shebang that cannot portably pass Node.js flags; the growth factor is read each
 * time the young generation would grow, so setting it to 1 here has the same effect.
 *
 * Left alone when the user sized the young generation themselves (NODE_OPTIONS or node's flags).
 */
export function keepYoungGenerationSmall(): void {
  const given = `${process.env.NODE_OPTIONS ?? ""} ${process.execArgv.join(" ")}`;
  if (/semi[-_]space/.test(given)) return;
  setFlagsFromString("--semi-space-growth-factor=1");
}
