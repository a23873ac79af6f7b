import { access, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createMariadbDriver } from "../src/index.ts";
import { accountWithSource, childProcesses, databaseUrl, randomName, runSql, type TestAccount, waitFor } from "./mariadb.ts";

const server = inject("mariadb");
let account: TestAccount;
let sourceUrl: string;
let workDirectory: string;

beforeAll(async () => {
  workDirectory = await mkdtemp(join(tmpdir(), "hoard-mariadb-credentials-"));
  // Big enough (about 1.5 MB of SQL) that the dump blocks on its full pipe while nobody reads it.
  ({ account, sourceUrl } = await accountWithSource(
    server.url,
    "CREATE TABLE big (id INT PRIMARY KEY, payload CHAR(128)); INSERT INTO big SELECT seq, SHA2(seq, 512) FROM seq_1_to_10000;",
  ));
});

afterAll(async () => {
  await account?.drop();
  await rm(workDirectory, { recursive: true, force: true });
});

/**
 * The one running child called `name` (with `argument`, when given), with its arguments and
 * environment as /proc shows them.
 */
async function runningTool(name: string, argument?: string): Promise<{ pid: number; args: string[]; environment: string }> {
  const [tool] = await waitFor(async () => {
    const found = (await childProcesses(name)).filter((child) => argument === undefined || child.args.includes(argument));
    return found.length === 1 ? found : undefined;
  });
  if (!tool) throw new Error(`no ${name} running`);
  return { ...tool, environment: await readFile(`/proc/${tool.pid}/environ`, "utf8") };
}

async function expectPrivateOptionFile(args: string[]): Promise<string> {
  const first = args[1] ?? "";
  expect(first).toMatch(/^--defaults-extra-file=/);
  const file = first.slice("--defaults-extra-file=".length);
  expect((await stat(file)).mode & 0o777).toBe(0o600);
  expect((await stat(dirname(file))).mode & 0o777).toBe(0o700);
  expect(dirname(dirname(file))).toBe(workDirectory);
  expect(await readFile(file, "utf8")).toContain("[client]\npassword=");
  return file;
}

async function isGone(path: string): Promise<boolean> {
  try {
    await access(path);
    return false;
  } catch {
    return true;
  }
}

describe("the password never reaches a command line", () => {
  it("dump: not in argv or the environment; the option file is private and removed afterwards", async () => {
    const output = await createMariadbDriver({ url: sourceUrl }).dump({ workDirectory });
    if (output.kind !== "stream") throw new Error("expected a stream");
    const tool = await runningTool("mariadb-dump");
    const commandLine = tool.args.join(" ");
    expect(commandLine).not.toContain(account.password);
    expect(commandLine).not.toContain(encodeURIComponent(account.password));
    expect(commandLine).toContain(`--user=${account.user}`);
    expect(tool.environment).not.toContain(account.password);
    expect(tool.environment).not.toContain("MYSQL_PWD=");
    const file = await expectPrivateOptionFile(tool.args);

    const text = await readAll(output.stream);
    expect(text).toMatch(/-- Dump completed on .*\n$/);
    expect(text).toContain("INSERT INTO `big` VALUES");
    await waitFor(async () => ((await isGone(dirname(file))) ? true : undefined));
  });

  it("dump: a consumer that gives up kills the tool and removes the option file", async () => {
    const output = await createMariadbDriver({ url: sourceUrl }).dump({ workDirectory });
    if (output.kind !== "stream") throw new Error("expected a stream");
    const tool = await runningTool("mariadb-dump");
    const file = await expectPrivateOptionFile(tool.args);
    output.stream.destroy();
    await waitFor(async () => ((await childProcesses("mariadb-dump")).length === 0 ? true : undefined));
    await waitFor(async () => ((await isGone(dirname(file))) ? true : undefined));
  });

  it("restore: not in argv or the environment of the client; the option file is removed afterwards", async () => {
    const targetUrl = databaseUrl(sourceUrl, randomName(`${account.databasePrefix}target`));
    const input = new PassThrough();
    input.write("CREATE TABLE t (id INT PRIMARY KEY);\n");
    const restoring = createMariadbDriver({ url: targetUrl }).restore({ kind: "stream", stream: input }, { workDirectory });
    const tool = await runningTool("mariadb", "--binary-mode");
    expect(tool.args.join(" ")).not.toContain(account.password);
    expect(tool.environment).not.toContain(account.password);
    const file = await expectPrivateOptionFile(tool.args);
    input.end("INSERT INTO t VALUES (1), (2);\n");
    await restoring;
    expect(await isGone(dirname(file))).toBe(true);
    expect(await runSql(targetUrl, "SELECT COUNT(*) FROM t")).toBe("2\n");
  });
});

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
