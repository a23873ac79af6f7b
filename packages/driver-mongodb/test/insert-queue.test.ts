import { describe, expect, it } from "vitest";
import { insertQueue } from "../src/builtin-restore.ts";

/** A task whose end the test decides, counting how many such tasks run at once. */
function gate(counter: { running: number; most: number }) {
  let finish: (error?: Error) => void = () => {};
  const run = () =>
    new Promise<void>((resolve, reject) => {
      counter.running += 1;
      counter.most = Math.max(counter.most, counter.running);
      finish = (error) => {
        counter.running -= 1;
        if (error) reject(error);
        else resolve();
      };
    });
  return { run, finish: (error?: Error) => finish(error) };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe("the built-in restore's insert queue", () => {
  it("runs at most its limit at once, and add waits for a free place", async () => {
    const counter = { running: 0, most: 0 };
    const queue = insertQueue(2);
    const tasks = [gate(counter), gate(counter), gate(counter)];
    await queue.add(tasks[0]?.run as () => Promise<void>);
    await queue.add(tasks[1]?.run as () => Promise<void>);
    let thirdAdded = false;
    const third = queue.add(tasks[2]?.run as () => Promise<void>).then(() => {
      thirdAdded = true;
    });
    await turn();
    expect(thirdAdded).toBe(false);
    tasks[0]?.finish();
    await third;
    expect(thirdAdded).toBe(true);
    expect(counter.most).toBe(2);
    tasks[1]?.finish();
    tasks[2]?.finish();
    await queue.drain();
    expect(counter.running).toBe(0);
  });

  it("drain waits for every insert and then throws the first failure; the next add throws it too", async () => {
    const counter = { running: 0, most: 0 };
    const queue = insertQueue(3);
    const tasks = [gate(counter), gate(counter), gate(counter)];
    for (const task of tasks) await queue.add(task.run);
    tasks[1]?.finish(new Error("batch 2 rejected"));
    let drained = false;
    const draining = queue.drain().then(
      () => {
        drained = true;
      },
      (error: unknown) => {
        drained = true;
        throw error;
      },
    );
    await turn();
    // Two inserts are still running: drain does not report before they are answered.
    expect(drained).toBe(false);
    tasks[0]?.finish();
    tasks[2]?.finish(new Error("batch 3 rejected"));
    await expect(draining).rejects.toThrow("batch 2 rejected");
    expect(counter.running).toBe(0);
    await expect(queue.add(async () => {})).rejects.toThrow("batch 2 rejected");
  });

  it("settle waits for every insert and throws nothing", async () => {
    const counter = { running: 0, most: 0 };
    const queue = insertQueue(2);
    const tasks = [gate(counter), gate(counter)];
    for (const task of tasks) await queue.add(task.run);
    const settling = queue.settle();
    tasks[0]?.finish(new Error("rejected"));
    await turn();
    expect(counter.running).toBe(1);
    tasks[1]?.finish();
    await expect(settling).resolves.toBeUndefined();
    expect(counter.running).toBe(0);
  });

  it("with a limit of 1, runs one insert at a time", async () => {
    const order: string[] = [];
    const queue = insertQueue(1);
    for (const name of ["a", "b", "c"]) {
      await queue.add(async () => {
        order.push(`start ${name}`);
        await turn();
        order.push(`end ${name}`);
      });
    }
    await queue.drain();
    expect(order).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
  });
});
