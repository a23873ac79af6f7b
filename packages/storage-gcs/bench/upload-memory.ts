/**
 * Memory and throughput of one upload with the default options: uploads a generated stream (1 GiB unless a size in MiB
 * is given) to a throwaway fake-gcs-server and prints the uploading process's peak RSS and the throughput.
 * Not part of the tests. Needs a build (`npx tsc -p tsconfig.build.json` in this package), then, from the repository root:
 *   npx tsx packages/storage-gcs/bench/upload-memory.ts [MiB] [chunk MiB]
 *
 * The upload runs in a child `node` process on the built package, as the CLI would, so neither tsx nor the harness
 * counts toward the peak. fake-gcs-server holds a resumable upload in memory and re-hashes all of it for every chunk,
 * so the throughput here is the emulator's, far below what Google Cloud Storage takes.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startGcs } from "@hoard/test-harness";

const mebibytes = Number(process.argv[2] ?? 1024);
const chunkMebibytes = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
const built = new URL("../dist/index.js", import.meta.url).href;

// Runs in the child: generates `size` bytes in 1 MiB chunks (one random block, varied per chunk) and uploads them.
const child = `
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
const { createGcsStorage } = await import(process.env.BENCH_MODULE);
const size = Number(process.env.BENCH_SIZE);
const mebibyte = 1024 * 1024;
const block = randomBytes(mebibyte);
let produced = 0;
const source = new Readable({
  read() {
    if (produced >= size) return void this.push(null);
    const chunk = Buffer.from(block.subarray(0, Math.min(mebibyte, size - produced)));
    chunk.writeUInt32BE(produced / mebibyte, 0);
    produced += chunk.length;
    this.push(chunk);
  },
});
const chunkSize = process.env.BENCH_CHUNK ? Number(process.env.BENCH_CHUNK) : undefined;
const storage = createGcsStorage({ bucket: process.env.BENCH_BUCKET, apiEndpoint: process.env.BENCH_ENDPOINT, chunkSize });
const before = process.resourceUsage().maxRSS;
const started = process.hrtime.bigint();
const stored = await storage.upload("bench/upload.bin", source);
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
process.stdout.write(JSON.stringify({ size: stored.size, seconds, before, peak: process.resourceUsage().maxRSS }));
`;

const server = await startGcs();
try {
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "--eval", child], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    env: {
      ...process.env,
      BENCH_MODULE: built,
      BENCH_SIZE: String(mebibytes * 1024 * 1024),
      BENCH_CHUNK: chunkMebibytes === undefined ? "" : String(chunkMebibytes * 1024 * 1024),
      BENCH_BUCKET: await server.createBucket(),
      BENCH_ENDPOINT: server.endpoint,
    },
    maxBuffer: 1024 * 1024,
  });
  const result = JSON.parse(stdout) as { size: number; seconds: number; before: number; peak: number };
  const megabytes = (kilobytes: number) => (kilobytes / 1024).toFixed(1);
  process.stdout.write(
    `uploaded ${result.size} bytes in ${result.seconds.toFixed(1)} s: ${(result.size / 1024 / 1024 / result.seconds).toFixed(1)} MiB/s\n` +
      `peak RSS ${megabytes(result.peak)} MB (${megabytes(result.before)} MB before the upload), ` +
      `chunk size ${chunkMebibytes === undefined ? "16 MiB (default)" : `${chunkMebibytes} MiB`}\n`,
  );
} finally {
  await server.stop();
}
