import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { testMariadb, testMongo } from "@hoard/test-harness/vitest";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase, seedSmall } from "./postgres.ts";
import { collect, runCli, startCli } from "./run-cli.ts";
import { expectedSignature, jsonLines, metricValue, type Received, type Receiver, startReceiver, waitFor } from "./service-helpers.ts";

const run = promisify(execFile);
const postgres = inject("postgres");
const s3 = inject("s3");
const gcs = inject("gcs");
const s3Environment = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };

let directory: string;
let receiver: Receiver;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-run-"));
  receiver = await startReceiver();
});

afterAll(async () => {
  await receiver.close();
  await rm(directory, { recursive: true, force: true });
});

interface LogLine {
  time: string;
  level: string;
  event: string;
  job?: string;
  message: string;
  [field: string]: unknown;
}

/** The healthcheck steps a job's check got, in order: start, success, fail. */
function pings(requests: Received[], job: string): string[] {
  return requests
    .filter((request) => request.path.startsWith(`/hc/${job}`))
    .map((request) => (request.path.endsWith("/start") ? "start" : request.path.endsWith("/fail") ? "fail" : "success"));
}

function webhooks(requests: Received[], job: string): Array<Received & { json: Record<string, unknown> }> {
  return requests
    .filter((request) => request.path === "/hook")
    .map((request) => ({ ...request, json: JSON.parse(request.body) as Record<string, unknown> }))
    .filter((request) => request.json.job === job);
}

async function scrape(url: string): Promise<string> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

describe("hoard run", () => {
  it("runs PostgreSQL, MariaDB and MongoDB jobs to a directory, S3 and GCS with alerts, metrics, retention and a failing job", async () => {
    // The sources: one database of each kind, with something in it.
    const pgUrl = await createDatabase(postgres.url);
    await seedSmall(pgUrl);
    const mariadb = testMariadb();
    const mariaUrl = await mariadb.createScratchDatabase("hoard_run");
    await mariadb.query(
      "CREATE TABLE item (id int PRIMARY KEY, name varchar(20)); INSERT INTO item VALUES (1, 'lamp');",
      new URL(mariaUrl).pathname.slice(1),
    );
    const mongo = testMongo();
    const mongoDatabase = mongo.scratchDatabaseName("hoard_run");
    await mongo.command({ insert: "orders", documents: [{ _id: 1, item: "desk" }] }, mongoDatabase);

    // The failing job's prefix already holds backups: retention must never touch them, since its backups fail.
    const local = join(directory, "local");
    await rm(local, { recursive: true, force: true });
    await mkdir(local, { recursive: true });
    const oldBackups = ["broken-20200101000000.dump.gz", "broken-20200102000000.dump.gz", "broken-20200103000000.dump.gz"];
    for (const name of oldBackups) await writeFile(join(local, name), "old");

    const webhookSecret = `whsec-${randomBytes(8).toString("hex")}`;
    await writeFile(join(directory, "webhook-secret"), `${webhookSecret}\n`);
    const password = `pw${randomBytes(8).toString("hex")}`;
    // The MongoDB job encrypts to an age recipient (a passphrase's scrypt would cost seconds of CPU per run).
    const identityFile = join(directory, "mongo-identity.txt");
    await run("age-keygen", ["-o", identityFile]);
    const recipient = /public key: (age1\w+)/.exec(await readFile(identityFile, "utf8"))?.[1] as string;
    expect(recipient).toBeDefined();
    const s3Url = `s3://${s3.bucket}/hoard-run/${randomBytes(4).toString("hex")}`;
    const gcsUrl = `gs://${gcs.bucket}/hoard-run/${randomBytes(4).toString("hex")}`;
    // The password comes from PG_PASSWORD in the environment.
    const pgWithPassword = pgUrl.replace(/^([a-z]+:\/\/[^:@/]+)@/, `$1:$\{PG_PASSWORD}@`);
    expect(pgWithPassword).toContain("PG_PASSWORD");
    const config = join(directory, "hoard.yaml");
    await writeFile(
      config,
      `# every job at least every 2 s, so the test stays short
concurrency: 4
listen: 127.0.0.1:0
defaults:
  schedule: "*/2 * * * * *"
  grace: 1m
  notify:
    webhooks:
      - url: ${receiver.url}/hook
        secret: \${file:webhook-secret}
    timeout: 5s
jobs:
  pg:
    database: ${pgWithPassword}
    storage: ${local}
    retention: { keepLast: 2 }
    notify: { healthcheck: ${receiver.url}/hc/pg }
  maria:
    database: ${mariaUrl}
    storage: ${s3Url}
    mode: file
    compression: gzip   # not the default (zstd), so the job's compression must reach the backup
    settings: { s3ForcePathStyle: true }   # the endpoint and region come from HOARD_S3_* below
    notify: { healthcheck: ${receiver.url}/hc/maria }
  mongo:
    database: mongodb://${mongo.host}:${mongo.port}/${mongoDatabase}
    storage: ${gcsUrl}
    timezone: Europe/Berlin
    encryption:
      recipients: [${recipient}]
    settings: { gcsEndpoint: ${gcs.endpoint}, gcsProject: ${gcs.projectId} }
    notify: { healthcheck: ${receiver.url}/hc/mongo }
  broken:
    database: ${new URL(`/hoard_missing_${randomBytes(4).toString("hex")}`, postgres.url).toString()}
    storage: ${local}
    schedule: "* * * * * *"
    grace: 1s
    retention: { keepLast: 1 }
    notify: { healthcheck: ${receiver.url}/hc/broken }
`,
    );

    const checked = await runCli(["config", "check", "--config", config], { PG_PASSWORD: password });
    expect(checked.stderr).toBe("");
    expect(checked.code).toBe(0);
    expect(checked.stdout).toContain("4 jobs, valid");

    const started = Date.now();
    // hoard run's plugin variables (and flags) are defaults for every job; a job's settings win.
    const child = startCli(["run", "--config", config, "--log-format", "json"], {
      PG_PASSWORD: password,
      HOARD_S3_ENDPOINT: s3.endpoint,
      HOARD_S3_REGION: s3.region,
      ...s3Environment,
    });
    const finished = collect(child);
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer | string) => {
      stderr += chunk.toString();
    });
    const lines = () => jsonLines<LogLine>(stderr);
    try {
      const serving = await waitFor("the metrics server", () => lines().find((line) => line.event === "listening"));
      const url = serving.url as string;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

      const first = await scrape(url);
      for (const job of ["pg", "maria", "mongo", "broken"]) expect(metricValue(first, "hoard_backup_runs_total", job)).toBeDefined();

      // Every good job succeeds three times; the broken one fails meanwhile, every second.
      const successes = (job: string) => pings(receiver.requests, job).filter((step) => step === "success").length;
      await waitFor(
        "three successful runs of each good job",
        () => (["pg", "maria", "mongo"].every((job) => successes(job) >= 3) ? true : undefined),
        120_000,
      );
      const middle = await scrape(url);
      expect(metricValue(middle, "hoard_backup_failures_total", "broken")).toBeGreaterThanOrEqual(2);
      expect(metricValue(middle, "hoard_backup_last_success_timestamp_seconds", "broken")).toBe(0);
      for (const job of ["pg", "maria", "mongo"]) {
        expect(metricValue(middle, "hoard_backup_failures_total", job)).toBe(0);
        expect(metricValue(middle, "hoard_backup_last_success_timestamp_seconds", job)).toBeGreaterThan(started / 1000);
        expect(metricValue(middle, "hoard_backup_last_size_bytes", job)).toBeGreaterThan(0);
        expect(metricValue(middle, "hoard_backup_last_duration_seconds", job)).toBeGreaterThan(0);
        expect(metricValue(middle, "hoard_backup_runs_total", job)).toBeGreaterThanOrEqual(3);
      }
      // Metrics move: later runs count.
      const runsBefore = metricValue(middle, "hoard_backup_runs_total", "pg") as number;
      const failuresBefore = metricValue(middle, "hoard_backup_failures_total", "broken") as number;
      await waitFor("more runs", async () => {
        const later = await scrape(url);
        return (metricValue(later, "hoard_backup_runs_total", "pg") as number) > runsBefore &&
          (metricValue(later, "hoard_backup_failures_total", "broken") as number) > failuresBefore
          ? true
          : undefined;
      });

      // /healthz: the broken job missed its scheduled success by more than its grace of 1 s.
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(503);
      const status = (await health.json()) as { status: string; jobs: Record<string, { late: boolean }> };
      expect(status.status).toBe("late");
      expect(status.jobs.broken?.late).toBe(true);
      expect(status.jobs.pg?.late).toBe(false);
      expect(status.jobs.maria?.late).toBe(false);
      expect(status.jobs.mongo?.late).toBe(false);
    } finally {
      child.kill("SIGTERM");
    }
    const result = await finished;
    expect(result.code).toBe(0);

    const log = lines();
    // Every line is one JSON object with the fields, and the run ended cleanly.
    for (const line of log) {
      expect(typeof line.time).toBe("string");
      expect(["debug", "info", "warn", "error"]).toContain(line.level);
      expect(typeof line.event).toBe("string");
    }
    expect(log.some((line) => line.event === "stopping")).toBe(true);
    expect(log.at(-1)?.event).toBe("stopped");
    const failures = log.filter((line) => line.event === "job-failed");
    expect(failures.length).toBeGreaterThanOrEqual(2);
    expect(failures.every((line) => line.job === "broken" && line.level === "error")).toBe(true);
    // One failing job does not stop the others: they keep succeeding after its first failure.
    const firstFailure = log.indexOf(failures[0] as LogLine);
    expect(log.slice(firstFailure).filter((line) => line.event === "job-succeeded").length).toBeGreaterThanOrEqual(3);
    expect(log.some((line) => line.event === "backup-finished" && line.job === "mongo" && (line.size as number) > 0)).toBe(true);
    // Secrets never appear: the database password from the environment, the webhook key from a file.
    expect(stderr).not.toContain(password);
    expect(stderr).not.toContain(webhookSecret);

    // Healthcheck pings in the healthchecks.io convention, in order: start, then success or fail, never overlapping.
    for (const job of ["pg", "maria", "mongo", "broken"]) {
      const steps = pings(receiver.requests, job);
      expect(steps.length).toBeGreaterThanOrEqual(4);
      steps.forEach((step, index) => {
        if (index % 2 === 0) expect(step).toBe("start");
        else expect(step).toBe(job === "broken" ? "fail" : "success");
      });
      expect(steps.length % 2).toBe(0);
    }
    const failPing = receiver.requests.find((request) => request.path === "/hc/broken/fail");
    expect(failPing?.method).toBe("POST");
    expect(failPing?.body).toMatch(/does not exist/);
    expect(failPing?.body).not.toContain("\n");

    // Webhooks: one signed JSON report per finished run.
    for (const job of ["pg", "maria", "mongo"]) {
      const reports = webhooks(receiver.requests, job);
      expect(reports.length).toBe(pings(receiver.requests, job).filter((step) => step === "success").length);
      for (const report of reports) {
        expect(report.headers["content-type"]).toBe("application/json");
        expect(report.headers["x-hoard-signature-256"]).toBe(expectedSignature(report.body, webhookSecret));
        expect(report.json).toMatchObject({ job, status: "succeeded" });
        expect(report.json.size).toBeGreaterThan(0);
        expect(typeof report.json.durationMs).toBe("number");
        expect(report.json.error).toBeUndefined();
      }
    }
    expect(webhooks(receiver.requests, "maria")[0]?.json.url).toMatch(new RegExp(`^${s3Url}/maria-\\d{14}\\.sql\\.gz$`));
    expect(webhooks(receiver.requests, "mongo")[0]?.json.url).toMatch(new RegExp(`^${gcsUrl}/mongo-\\d{14}\\.archive\\.zst\\.age$`));
    // The encrypted MongoDB backup restores with the recipient's identity.
    const mongoBackup = webhooks(receiver.requests, "mongo")[0]?.json.url as string;
    const restored = await runCli([
      "restore",
      mongoBackup,
      `mongodb://${mongo.host}:${mongo.port}/${mongoDatabase}_copy`,
      "--gcs-endpoint",
      gcs.endpoint,
      "--gcs-project",
      gcs.projectId,
      "--identity-file",
      identityFile,
    ]);
    expect(restored.stderr).not.toContain("hoard:");
    expect(restored.code).toBe(0);
    const found = await mongo.command({ find: "orders", filter: {} }, `${mongoDatabase}_copy`);
    expect((found.cursor as { firstBatch: unknown[] }).firstBatch).toEqual([{ _id: 1, item: "desk" }]);
    const brokenReports = webhooks(receiver.requests, "broken");
    expect(brokenReports.length).toBeGreaterThanOrEqual(2);
    for (const report of brokenReports) {
      expect(report.json).toMatchObject({ job: "broken", status: "failed" });
      expect(report.json.error).toMatch(/does not exist/);
      expect(report.json.url).toBeUndefined();
    }

    // Retention ran after each stored backup of pg (keep 2), and never for the failing job.
    const files = await readdir(local);
    const pgBackups = files.filter((name) => /^pg-\d{14}\.dump\.zst$/.test(name));
    expect(pgBackups).toHaveLength(2);
    expect(files.filter((name) => name.startsWith("broken-")).sort()).toEqual(oldBackups);
    // The other stores hold every backup their jobs reported.
    const listed = await runCli(
      ["list", s3Url, "--prefix", "maria", "--json", "--s3-endpoint", s3.endpoint, "--s3-force-path-style", "--s3-region", s3.region],
      s3Environment,
    );
    expect(listed.code).toBe(0);
    const mariaBackups = JSON.parse(listed.stdout) as Array<{ key: string }>;
    expect(mariaBackups.length).toBe(webhooks(receiver.requests, "maria").length);
    // The job's compression reaches the backup (it was once accepted by the config and ignored).
    for (const { key } of mariaBackups) expect(key).toMatch(/^maria-\d{14}\.sql\.gz$/);
  });

  it("refuses an invalid config with one line naming the file, the job and the field, and starts nothing", async () => {
    const config = join(directory, "bad.yaml");
    await writeFile(config, `jobs:\n  shop:\n    database: postgresql://x/y\n    storage: ${directory}\n    schedule: "every night"\n`);
    const result = await runCli(["run", "--config", config]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`hoard: ${config}: jobs.shop.schedule: invalid cron expression\n`);
  });
});
