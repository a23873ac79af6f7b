import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type SilentServer, startSilentServer } from "@hoard/test-harness";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase, seedSmall } from "./postgres.ts";
import { runCli } from "./run-cli.ts";
import { expectedSignature, metricValue, type Receiver, startReceiver } from "./service-helpers.ts";

const postgres = inject("postgres");
let directory: string;
let receiver: Receiver;
let silent: SilentServer;
let sourceUrl: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-oneshot-"));
  receiver = await startReceiver();
  silent = await startSilentServer();
  sourceUrl = await createDatabase(postgres.url);
  await seedSmall(sourceUrl);
});

afterAll(async () => {
  await receiver.close();
  await silent.close();
  await rm(directory, { recursive: true, force: true });
});

describe("hoard backup with --healthcheck-url, --webhook-url and --metrics-file", () => {
  it("pings, posts a signed report and keeps a metrics file across a success and a failure", async () => {
    const token = randomBytes(8).toString("hex");
    const secret = `key-${randomBytes(8).toString("hex")}`;
    const storage = join(directory, "store");
    const metricsFile = join(directory, "metrics", "hoard.prom");
    await mkdir(join(directory, "metrics"));
    const reporting = [
      "--healthcheck-url",
      `${receiver.url}/hc/${token}`,
      "--webhook-url",
      `${receiver.url}/hook`,
      "--metrics-file",
      metricsFile,
    ];
    const environment = { HOARD_WEBHOOK_SECRET: secret };

    const good = await runCli(["backup", sourceUrl, storage, "--prefix", "shop", ...reporting], environment);
    expect(good.stderr).not.toContain("hoard:");
    expect(good.code).toBe(0);
    const stored = good.stdout.trim();
    expect(stored).toMatch(/shop-\d{14}\.dump\.zst$/);
    const afterSuccess = await readFile(metricsFile, "utf8");
    const successTime = metricValue(afterSuccess, "hoard_backup_last_success_timestamp_seconds", "shop") as number;
    expect(successTime).toBeGreaterThan(Date.now() / 1000 - 120);
    expect(metricValue(afterSuccess, "hoard_backup_runs_total", "shop")).toBe(1);
    expect(metricValue(afterSuccess, "hoard_backup_failures_total", "shop")).toBe(0);
    expect(metricValue(afterSuccess, "hoard_backup_running", "shop")).toBe(0);
    expect(metricValue(afterSuccess, "hoard_backup_last_size_bytes", "shop")).toBeGreaterThan(0);

    const missing = new URL(`/hoard_missing_${token}`, postgres.url).toString();
    const bad = await runCli(["backup", missing, storage, "--prefix", "shop", ...reporting], environment);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^hoard: .*does not exist/m);
    const afterFailure = await readFile(metricsFile, "utf8");
    // The failure counts, and the last success is still the one before.
    expect(metricValue(afterFailure, "hoard_backup_last_success_timestamp_seconds", "shop")).toBe(successTime);
    expect(metricValue(afterFailure, "hoard_backup_runs_total", "shop")).toBe(2);
    expect(metricValue(afterFailure, "hoard_backup_failures_total", "shop")).toBe(1);
    expect(metricValue(afterFailure, "hoard_backup_last_failure_timestamp_seconds", "shop")).toBeGreaterThanOrEqual(successTime);
    // Written by rename: no temporary file is left beside it.
    expect(await readdir(join(directory, "metrics"))).toEqual(["hoard.prom"]);

    const checks = receiver.requests.filter((request) => request.path.startsWith(`/hc/${token}`));
    expect(checks.map((request) => request.path.slice(`/hc/${token}`.length))).toEqual(["/start", "", "/start", "/fail"]);
    expect(checks[1]?.body).toContain(stored);
    expect(checks[3]?.body).toMatch(/does not exist/);
    const hooks = receiver.requests.filter((request) => request.path === "/hook");
    expect(hooks).toHaveLength(2);
    for (const hook of hooks) expect(hook.headers["x-hoard-signature-256"]).toBe(expectedSignature(hook.body, secret));
    expect(JSON.parse(hooks[0]?.body ?? "")).toMatchObject({ job: "shop", status: "succeeded", url: stored });
    expect(JSON.parse(hooks[1]?.body ?? "")).toMatchObject({
      job: "shop",
      status: "failed",
      error: expect.stringMatching(/does not exist/),
    });
    for (const output of [good.stderr, bad.stderr]) expect(output).not.toContain(secret);
  });

  it("backs up although the healthcheck never answers: a warning naming the host, not the check's token", async () => {
    const token = randomBytes(8).toString("hex");
    const result = await runCli([
      "backup",
      sourceUrl,
      join(directory, "silent"),
      "--healthcheck-url",
      `${silent.url}/${token}`,
      "--notify-timeout",
      "1s",
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toMatch(/backup-\d{14}\.dump\.zst$/);
    expect(result.stderr).toContain(
      `warning: could not deliver the healthcheck start ping to ${new URL(silent.url).origin}: no answer within 1 s`,
    );
    expect(result.stderr).toContain("could not deliver the healthcheck success ping");
    expect(result.stderr).not.toContain(token);
  });

  it("sends a webhook again after a 503, and logs one that stays undelivered", async () => {
    const flaky = await startReceiver([503, 503, 503]);
    try {
      const retried = await runCli([
        "backup",
        sourceUrl,
        join(directory, "retry"),
        "--webhook-url",
        `${flaky.url}/hook`,
        "--notify-retries",
        "3",
      ]);
      expect(retried.code).toBe(0);
      expect(retried.stderr).not.toContain("could not deliver");
      expect(flaky.requests).toHaveLength(4);
      expect(new Set(flaky.requests.map((request) => request.body)).size).toBe(1);

      const given = await startReceiver([503, 503]);
      try {
        const undelivered = await runCli([
          "backup",
          sourceUrl,
          join(directory, "retry"),
          "--webhook-url",
          `${given.url}/hook`,
          "--notify-retries",
          "1",
        ]);
        expect(undelivered.code).toBe(0);
        expect(undelivered.stderr).toContain(`warning: could not deliver the webhook to ${given.url}: HTTP 503`);
        expect(given.requests).toHaveLength(2);
      } finally {
        await given.close();
      }
    } finally {
      await flaky.close();
    }
  });

  it("refuses a webhook secret on the command line and a healthcheck URL that is not http, without quoting them", async () => {
    const secretFlag = await runCli(["backup", sourceUrl, join(directory, "x"), "--webhook-secret", "s3cr3t-value"]);
    expect(secretFlag.code).toBe(2);
    expect(secretFlag.stderr).toBe(
      "hoard: --webhook-secret is a secret and is not taken from the command line: set HOARD_WEBHOOK_SECRET or use --webhook-secret-file\n",
    );
    const notHttp = await runCli(["backup", sourceUrl, join(directory, "x"), "--healthcheck-url", "ftp://hc.example/abc-token"]);
    expect(notHttp.code).toBe(2);
    expect(notHttp.stderr).toBe("hoard: invalid --healthcheck-url: use an http:// or https:// URL\n");
  });

  it("logs one JSON object per line with --log-format json", async () => {
    const result = await runCli(["backup", sourceUrl, join(directory, "json"), "--log-format", "json"]);
    expect(result.code).toBe(0);
    const lines = result.stderr
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => line.event)).toEqual(["backup-started", "backup-finished"]);
    expect(lines[1]).toMatchObject({ level: "info", event: "backup-finished", key: expect.stringMatching(/^backup-\d{14}\.dump\.zst$/) });
    expect(typeof lines[1]?.size).toBe("number");
    expect(Number.isNaN(Date.parse(lines[0]?.time as string))).toBe(false);
  });
});
