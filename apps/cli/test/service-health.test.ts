import { describe, expect, it } from "vitest";
import { createJobHealth } from "../src/service/health.ts";
import { createRedactor } from "../src/service/redact.ts";

const minute = 60_000;

describe("when a job is late for /healthz", () => {
  it("is not late before its first scheduled time is grace old", () => {
    const health = createJobHealth(10 * minute);
    expect(health.state(0).late).toBe(false);
    health.tick(0);
    expect(health.state(10 * minute - 1).late).toBe(false);
    expect(health.state(10 * minute).late).toBe(true);
  });

  it("is late when the newest scheduled time at least grace ago has no stored backup from its run or a later one", () => {
    const health = createJobHealth(10 * minute);
    health.tick(0);
    health.stored(0);
    health.tick(60 * minute);
    // The run of 60 min has until 70 min; the one of 0 succeeded.
    expect(health.state(69 * minute).late).toBe(false);
    expect(health.state(70 * minute)).toEqual({ late: true, lastStoredTick: 0, judgedTick: 60 * minute });
    // A later run's success settles it.
    health.tick(120 * minute);
    health.stored(120 * minute);
    expect(health.state(121 * minute).late).toBe(false);
  });

  it("counts a tick skipped because the previous run was still going", () => {
    const health = createJobHealth(5 * minute);
    health.tick(0);
    health.tick(10 * minute); // skipped: the run of 0 is still going
    health.stored(0); // the run of 0 ends after 10 min
    expect(health.state(12 * minute).late).toBe(false);
    expect(health.state(15 * minute).late).toBe(true);
  });
});

describe("redaction", () => {
  it("replaces secrets, their URL-encoded and JSON-escaped forms, and leaves short values alone", () => {
    const redact = createRedactor(['p@ss"word/1', "abc"]);
    expect(redact('postgresql://u:p%40ss%22word%2F1@h/db and p@ss"word/1 and "p@ss\\"word/1" abc')).toBe(
      'postgresql://u:***@h/db and *** and "***" abc',
    );
  });
});
