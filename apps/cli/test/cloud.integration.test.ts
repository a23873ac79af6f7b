import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase, seedSmall, snapshotSmall } from "./postgres.ts";
import { runCli } from "./run-cli.ts";

const postgres = inject("postgres");
const s3 = inject("s3");
const gcs = inject("gcs");

let sourceUrl: string;
let expected: string;

beforeAll(async () => {
  sourceUrl = await createDatabase(postgres.url);
  await seedSmall(sourceUrl);
  expected = await snapshotSmall(sourceUrl);
});

interface Store {
  name: string;
  url: () => string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

const stores: Store[] = [
  {
    name: "S3 (versitygw)",
    url: () => `s3://${s3.bucket}/hoard-cli/${randomBytes(4).toString("hex")}`,
    args: ["--s3-endpoint", s3.endpoint, "--s3-force-path-style", "--s3-region", s3.region],
    env: { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey },
  },
  {
    name: "GCS (fake-gcs-server)",
    url: () => `gs://${gcs.bucket}/hoard-cli/${randomBytes(4).toString("hex")}`,
    args: ["--gcs-endpoint", gcs.endpoint, "--gcs-project", gcs.projectId],
    env: {},
  },
];

for (const store of stores) {
  describe(`PostgreSQL through ${store.name}`, () => {
    for (const mode of ["stream", "file"]) {
      it(`backs up in ${mode} mode, lists, restores the latest and prunes`, async () => {
        const storageUrl = store.url();
        const first = await runCli(["backup", sourceUrl, storageUrl, "--mode", mode, ...store.args], store.env);
        expect(first.stderr).not.toContain("hoard:");
        // No runtime warning either (MaxListenersExceededWarning from an SDK, a deprecation).
        expect(first.stderr).not.toMatch(/Warning/);
        expect(first.code).toBe(0);
        expect(first.stdout.trim()).toMatch(new RegExp(`^${storageUrl}/backup-\\d{14}\\.dump\\.zst$`));
        // A second backup a second later, so there is something to prune.
        await new Promise((resolve) => setTimeout(resolve, 1100));
        const second = await runCli(["backup", sourceUrl, storageUrl, "--mode", mode, ...store.args], store.env);
        expect(second.code).toBe(0);

        const listed = await runCli(["list", storageUrl, "--json", ...store.args], store.env);
        expect(listed.code).toBe(0);
        const keys = (JSON.parse(listed.stdout) as Array<{ key: string }>).map((entry) => entry.key);
        expect(keys).toHaveLength(2);
        expect(`${storageUrl}/${keys[0]}`).toBe(second.stdout.trim());

        const target = await createDatabase(postgres.url);
        const restored = await runCli(["restore", storageUrl, target, "--latest", ...store.args], store.env);
        expect(restored.stderr).not.toContain("hoard:");
        expect(restored.stderr).not.toMatch(/Warning/);
        expect(restored.code).toBe(0);
        expect(restored.stdout.trim()).toBe(keys[0]);
        expect(await snapshotSmall(target)).toBe(expected);

        const byUrl = await createDatabase(postgres.url);
        const direct = await runCli(["restore", first.stdout.trim(), byUrl, ...store.args], store.env);
        expect(direct.code).toBe(0);
        expect(await snapshotSmall(byUrl)).toBe(expected);

        const pruned = await runCli(["prune", storageUrl, "--keep-last", "1", "--json", ...store.args], store.env);
        expect(pruned.code).toBe(0);
        const after = await runCli(["list", storageUrl, "--json", ...store.args], store.env);
        expect((JSON.parse(after.stdout) as Array<{ key: string }>).map((entry) => entry.key)).toEqual([keys[0]]);
      });
    }

    it("fails a backup of a missing database and leaves nothing in the bucket", async () => {
      const storageUrl = store.url();
      const failed = await runCli(["backup", new URL("/no_such_db_cloud", postgres.url).toString(), storageUrl, ...store.args], store.env);
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain('database "no_such_db_cloud" does not exist');
      const listed = await runCli(["list", storageUrl, "--json", ...store.args], store.env);
      expect(JSON.parse(listed.stdout)).toEqual([]);
    });
  });
}
