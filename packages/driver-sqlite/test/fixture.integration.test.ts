import { expect, it } from "vitest";
import { seedFixture, snapshotFixture } from "./fixture.ts";
import { newPath, scratchDirectory, urlOf } from "./sqlite.ts";

const directory = await scratchDirectory("hoard-sqlite-fixture-");

// The round trip compares snapshots; this makes sure the snapshot reads what the fixture promises.
it("snapshots every kind of object and value the fixture holds", async () => {
  const url = urlOf(newPath(directory));
  await seedFixture(url);
  const snapshot = (await snapshotFixture(url)) as {
    settings: unknown[];
    schema: string[];
    data: Record<string, string[]>;
    view: string[];
    search: string[];
    integrity: string;
  };
  expect(snapshot.settings).toEqual([42, 1213486160, "wal", 4096]);
  const kinds = snapshot.schema.map((row) => (JSON.parse(row) as string[]).slice(0, 2).join(" "));
  expect(kinds).toEqual(
    expect.arrayContaining([
      "table customer",
      "table order item",
      "table notes",
      "index customer_name",
      "index order item by price",
      "view big_spenders",
      "trigger customer_renamed",
      "table sqlite_sequence",
    ]),
  );
  const customers = snapshot.data.customer?.join("\n") ?? "";
  expect(customers).toContain("X'89504E470D0A1A0A00FF00'");
  expect(customers).toContain("X''");
  expect(customers).toContain("'日本語の名前 🐘'");
  expect(customers).toContain("line 2 with ''quotes''");
  expect(customers).toContain("NULL");
  expect(snapshot.data.audit).toHaveLength(1);
  expect(snapshot.data.loose).toEqual(
    expect.arrayContaining(['["1"]', '["real 1.5"]', "[\"'1'\"]", "[\"X'31'\"]", '["NULL"]', '["9223372036854775807"]']),
  );
  expect(snapshot.view).toHaveLength(2);
  expect(snapshot.search).toEqual(["an elephant never forgets", "der Elefant vergisst nie 🐘"]);
  expect(snapshot.integrity).toBe("ok\n");
});
