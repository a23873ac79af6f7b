import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type SilentServer, startSilentServer } from "@hoard/test-harness";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase, seedSmall } from "./postgres.ts";
import { type CliResult, collect, startCli } from "./run-cli.ts";
import { jsonLines, waitFor } from "./service-helpers.ts";

const postgres = inject("postgres");
let directory: string;
let silent: SilentServer;
let sourceUrl: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-run-signals-"));
  silent = await startSilentServer();
  sourceUrl = await createDatabase(postgres.url);
  await seedSmall(sourceUrl);
});

afterAll(async () => {
  await silent.close();
  await rm(directory, { recursive: true, force: true });
});

interface LogLine {
  event: string;
  job?: string;
  level: string;
  code?: string;
}

/** Starts `hoard run --log-format json` on a config and follows its log lines. */
async function startRun(name: string, config: string) {
  const file = join(directory, name);
  await writeFile(file, config);
  const child: ChildProcess = startCli(["run", "--config", file, "--log-format", "json"], {
    AWS_ACCESS_KEY_ID: "hoard-test",
    AWS_SECRET_ACCESS_KEY: "hoard-test-secret",
  });
  const finished: Promise<CliResult> = collect(child);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer | string) => {
    stderr += chunk.toString();
  });
  const lines = () => jsonLines<LogLine>(stderr);
  const events = () => lines().map((line) => (line.job ? `${line.job}:${line.event}` : line.event));
  return { child, finished, lines, events };
}

/** A job whose storage never answers: its run goes on until the timeout, or until it is aborted. */
const hangingJob = (timeout: string) => `listen: false
jobs:
  hang:
    database: ${sourceUrl}
    storage: s3://bucket/hang
    schedule: "* * * * * *"
    timeout: ${timeout}
    settings: { s3Endpoint: "${silent.url}", s3ForcePathStyle: true, s3Region: us-east-1 }
`;

describe("hoard run and signals", () => {
  it("lets the running job finish after the first SIGTERM, then exits 0", async () => {
    const run = await startRun("finish.yaml", hangingJob("2s"));
    await waitFor("the job to start", () => (run.events().includes("hang:job-started") ? true : undefined));
    run.child.kill("SIGTERM");
    await waitFor("the stop to be announced", () => (run.events().includes("stopping") ? true : undefined));
    // Still running: it waits for the job, which ends when the silent storage times out.
    expect(run.child.exitCode).toBeNull();
    const result = await run.finished;
    expect(result.code).toBe(0);
    const events = run.events();
    expect(events.filter((event) => event === "hang:job-started")).toHaveLength(1);
    expect(events.indexOf("stopping")).toBeLessThan(events.indexOf("hang:job-failed"));
    expect(events.at(-1)).toBe("stopped");
    const failure = run.lines().find((line) => line.event === "job-failed");
    expect(failure?.code).not.toBe("ABORTED");
  });

  it("aborts the running job on a second SIGTERM and exits 143", async () => {
    const run = await startRun("abort.yaml", hangingJob("5m"));
    await waitFor("the job to start", () => (run.events().includes("hang:job-started") ? true : undefined));
    run.child.kill("SIGTERM");
    await waitFor("the stop to be announced", () => (run.events().includes("stopping") ? true : undefined));
    run.child.kill("SIGTERM");
    const result = await run.finished;
    expect(result.code).toBe(143);
    const events = run.events();
    expect(events).toContain("aborting");
    expect(run.lines().find((line) => line.event === "job-failed")?.code).toBe("ABORTED");
    expect(events.at(-1)).toBe("stopped");
  });

  it("never runs more jobs at once than concurrency allows, and each job waits for its slot", async () => {
    const storage = join(directory, "limited");
    const run = await startRun(
      "limited.yaml",
      `concurrency: 1
listen: false
defaults:
  database: ${sourceUrl}
  storage: ${storage}
  schedule: "* * * * * *"
jobs:
  one: {}
  two: {}
  three: {}
`,
    );
    const succeeded = (job: string) => run.events().filter((event) => event === `${job}:job-succeeded`).length;
    try {
      await waitFor("two runs of each job", () => (["one", "two", "three"].every((job) => succeeded(job) >= 2) ? true : undefined));
    } finally {
      run.child.kill("SIGTERM");
    }
    expect((await run.finished).code).toBe(0);
    let running = 0;
    let most = 0;
    for (const line of run.lines()) {
      if (line.event === "job-started") running += 1;
      if (line.event === "job-succeeded" || line.event === "job-failed") running -= 1;
      most = Math.max(most, running);
    }
    expect(most).toBe(1);
    expect(running).toBe(0);
  });
});
