import { setTimeout as delay } from "node:timers/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { HoardEvent } from "../src/logger.ts";
import { schedule } from "../src/pipelines/schedule.ts";

afterEach(() => {
  vi.restoreAllMocks();
});

describe("schedule when the process is busy", () => {
  it("reports a missed tick through the logger, never on the console (a JSON log stays one object per line)", async () => {
    const printed: string[] = [];
    for (const method of ["warn", "error", "log", "info"] as const) {
      vi.spyOn(console, method).mockImplementation((...parts: unknown[]) => {
        printed.push(parts.map(String).join(" "));
      });
    }
    const events: HoardEvent[] = [];
    let runs = 0;
    const task = schedule({
      expression: "* * * * * *",
      run: async () => {
        runs += 1;
        if (runs === 1) {
          // Block the event loop past several ticks, as a synchronous key derivation or a huge JSON parse would.
          const until = Date.now() + 3500;
          while (Date.now() < until) {
            // busy
          }
        }
        return runs;
      },
      logger: { event: (event) => events.push(event) },
    });
    for (let waited = 0; waited < 8000 && !events.some((event) => event.type === "schedule-skipped"); waited += 100) await delay(100);
    await task.stop();
    const skipped = events.flatMap((event) => (event.type === "schedule-skipped" ? [event.reason] : []));
    expect(skipped.some((reason) => /missed: the process was busy/.test(reason))).toBe(true);
    expect(printed.filter((line) => /missed execution/i.test(line))).toEqual([]);
  });
});
