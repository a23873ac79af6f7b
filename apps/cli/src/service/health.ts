/**
 * When a job counts as late for `/healthz`. A job's scheduled times are the ticks its schedule
 * fires (also those skipped because the previous run was still going). Let S be the newest
 * scheduled time at least `grace` ago: the run of S has had `grace` to succeed. The job is late
 * when such an S exists and no run started at S or later has stored a backup. Before its first S
 * (in the first `grace` after the first tick) a job is not late: hoard cannot judge what it has
 * not scheduled yet.
 */
export interface JobHealth {
  /** A scheduled time came (the run may wait for a slot, or be skipped). */
  tick(at: number): void;
  /** The run of the tick at `tick` stored a backup. */
  stored(tick: number): void;
  /** The state at `now`, for `/healthz`. */
  state(now: number): { late: boolean; lastStoredTick?: number; judgedTick?: number };
}

export function createJobHealth(graceMs: number): JobHealth {
  // Ascending; only the newest tick at least `grace` old and the ones after it are kept.
  const ticks: number[] = [];
  let lastStoredTick: number | undefined;
  const judged = (now: number): number | undefined => {
    let found: number | undefined;
    for (const tick of ticks) if (tick <= now - graceMs) found = tick;
    return found;
  };
  return {
    tick(at) {
      ticks.push(at);
      while (ticks.length > 1 && (ticks[1] as number) <= at - graceMs) ticks.shift();
    },
    stored(tick) {
      if (lastStoredTick === undefined || tick > lastStoredTick) lastStoredTick = tick;
    },
    state(now) {
      const judgedTick = judged(now);
      const late = judgedTick !== undefined && (lastStoredTick === undefined || lastStoredTick < judgedTick);
      return {
        late,
        ...(lastStoredTick !== undefined && { lastStoredTick }),
        ...(judgedTick !== undefined && { judgedTick }),
      };
    },
  };
}
