// The measured side of upload-memory.ts: a plain Node process (no TypeScript loader) that loads
// the built package, uploads a generated stream and prints one JSON line. Configured through
// HOARD_BENCH_* environment variables by upload-memory.ts.
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { createS3Storage } from "../dist/index.js";

const mebibyte = 1024 * 1024;
const environment = process.env;
const size = Number(environment.HOARD_BENCH_SIZE);
const chunkSize = Number(environment.HOARD_BENCH_CHUNK_SIZE);

/** `size` bytes in fresh `chunkSize` buffers (as gzip or a pipe delivers them), cheap to make. */
function generatedStream() {
  const template = randomBytes(chunkSize);
  let remaining = size;
  return new Readable({
    read() {
      if (remaining <= 0) {
        this.push(null);
        return;
      }
      const chunk = Buffer.allocUnsafe(Math.min(chunkSize, remaining));
      template.copy(chunk, 0, 0, chunk.length);
      chunk.writeUInt32BE(remaining >>> 0, 0);
      remaining -= chunk.length;
      this.push(chunk);
    },
  });
}

const storage = createS3Storage({
  endpoint: environment.HOARD_BENCH_ENDPOINT,
  region: environment.HOARD_BENCH_REGION,
  credentials: {
    accessKeyId: environment.HOARD_BENCH_ACCESS_KEY_ID ?? "",
    secretAccessKey: environment.HOARD_BENCH_SECRET_ACCESS_KEY ?? "",
  },
  bucket: environment.HOARD_BENCH_BUCKET ?? "",
  ...(environment.HOARD_BENCH_PART_SIZE && { partSize: Number(environment.HOARD_BENCH_PART_SIZE) }),
  ...(environment.HOARD_BENCH_QUEUE_SIZE && { queueSize: Number(environment.HOARD_BENCH_QUEUE_SIZE) }),
  ...(environment.HOARD_BENCH_PART_GROWTH && { partGrowth: Number(environment.HOARD_BENCH_PART_GROWTH) }),
});
// Load the SDK and open a connection first, so the baseline includes them.
await storage.exists("warm-up");
const baseline = process.memoryUsage().rss;
let peakArrayBuffers = 0;
const sampler = setInterval(() => {
  peakArrayBuffers = Math.max(peakArrayBuffers, process.memoryUsage().arrayBuffers);
}, 20);
const started = performance.now();
const stored = await storage.upload("bench/upload.bin", generatedStream());
const seconds = (performance.now() - started) / 1000;
clearInterval(sampler);
const peak = process.resourceUsage().maxRSS * 1024;
process.stdout.write(
  `${JSON.stringify({
    uploadedMiB: stored.size / mebibyte,
    seconds: Number(seconds.toFixed(2)),
    throughputMiBPerSecond: Number((stored.size / mebibyte / seconds).toFixed(1)),
    baselineRssMiB: Number((baseline / mebibyte).toFixed(1)),
    peakRssMiB: Number((peak / mebibyte).toFixed(1)),
    peakArrayBuffersMiB: Number((peakArrayBuffers / mebibyte).toFixed(1)),
  })}\n`,
);
