/**
 * Peak memory and throughput of a stream upload: starts a throwaway versitygw, then uploads a
 * generated stream (1 GiB by default) from a plain Node process (bench/upload-memory-child.mjs,
 * which loads the built package, so no TypeScript loader inflates the numbers) and prints its
 * peak RSS (process.resourceUsage().maxRSS). Not part of the tests. From the repository root:
 *
 *   pnpm --filter @hoard/storage-s3 build
 *   pnpm exec tsx packages/storage-s3/bench/upload-memory.ts [--size-mib 1024] [--part-size-mib N] [--queue-size N] [--chunk-kib 64]
 *     [--part-growth N]   (parts grow to 1/N of the bytes sent, as from 800 on a stream N/800 times larger)
 *
 * Without --part-size-mib / --queue-size the package's defaults are measured.
 */
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startS3 } from "@hoard/test-harness";

const mebibyte = 1024 * 1024;
const { values } = parseArgs({
  options: {
    "size-mib": { type: "string", default: "1024" },
    "part-size-mib": { type: "string" },
    "queue-size": { type: "string" },
    "part-growth": { type: "string" },
    "chunk-kib": { type: "string", default: "64" },
  },
});

const server = await startS3();
try {
  const bucket = await server.createBucket();
  const child = spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), "upload-memory-child.mjs")], {
    stdio: ["ignore", "pipe", "inherit"],
    env: {
      ...process.env,
      HOARD_BENCH_ENDPOINT: server.endpoint,
      HOARD_BENCH_REGION: server.region,
      HOARD_BENCH_ACCESS_KEY_ID: server.accessKeyId,
      HOARD_BENCH_SECRET_ACCESS_KEY: server.secretAccessKey,
      HOARD_BENCH_BUCKET: bucket,
      HOARD_BENCH_SIZE: String(Number(values["size-mib"]) * mebibyte),
      HOARD_BENCH_CHUNK_SIZE: String(Number(values["chunk-kib"]) * 1024),
      HOARD_BENCH_PART_SIZE: values["part-size-mib"] === undefined ? "" : String(Number(values["part-size-mib"]) * mebibyte),
      HOARD_BENCH_QUEUE_SIZE: values["queue-size"] ?? "",
      HOARD_BENCH_PART_GROWTH: values["part-growth"] ?? "",
    },
  });
  let output = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (text: string) => {
    output += text;
  });
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  if (code !== 0) throw new Error(`the upload process exited with ${code}`);
  const result = JSON.parse(output) as Record<string, number>;
  process.stdout.write(
    `${JSON.stringify({ ...result, partSizeMiB: values["part-size-mib"] ?? "default", queueSize: values["queue-size"] ?? "default", nodeVersion: process.version }, null, 2)}\n`,
  );
} finally {
  await server.stop();
}
