/**
 * The Dockerfile as far as it can be checked without a container engine that can pull base images
 * (docs/install.md says what stops a build here): its stages, the non-root user, tini and hoard as
 * the entrypoint, the client tools, no secrets in ARG or ENV, and every COPY source present in the
 * build context (and not excluded by .dockerignore) or in the named build context. The packaging test
 * runs the same pack script and the same `npm install` of the tarballs as the image's stages.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/** `${NAME}` as the Dockerfile writes a variable. */
const variable = (name: string): string => `$${"{"}${name}}`;
const workspace = fileURLToPath(new URL("../../../", import.meta.url));
const dockerfile = readFileSync(join(workspace, "Dockerfile"), "utf8");

interface Instruction {
  keyword: string;
  /** The instruction's text after the keyword, continuation lines joined. */
  text: string;
  line: number;
}

interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}

/** Dockerfile instructions: comments and parser directives dropped, `\` continuations joined. */
function parseInstructions(source: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending: Instruction | undefined;
  source.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && pending === undefined)) return;
    const continues = line.endsWith("\\");
    const body = continues ? line.slice(0, -1).trim() : line;
    if (pending === undefined) {
      const [keyword = "", ...rest] = body.split(/\s+/);
      pending = { keyword: keyword.toUpperCase(), text: rest.join(" "), line: index + 1 };
    } else if (body !== "") {
      pending.text = `${pending.text} ${body}`;
    }
    if (!continues) {
      instructions.push(pending);
      pending = undefined;
    }
  });
  if (pending !== undefined) throw new Error(`Dockerfile ends inside an instruction (line ${pending.line})`);
  return instructions;
}

const instructions = parseInstructions(dockerfile);
const stages: Stage[] = [];
for (const instruction of instructions) {
  if (instruction.keyword === "FROM") {
    const match = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.text);
    if (!match) throw new Error(`unreadable FROM at line ${instruction.line}`);
    stages.push({ image: match[1] as string, name: match[2] ?? String(stages.length), instructions: [] });
  } else {
    stages.at(-1)?.instructions.push(instruction);
  }
}
const runtime = stages.at(-1) as Stage;

/** Named build contexts the header documents: `--build-context NAME=PATH` (PATH relative to the repository). */
const namedContexts = new Map(
  [...dockerfile.matchAll(/--build-context (\S+)=(\S+)/g)].map((match) => [match[1] as string, match[2] as string]),
);

/** Flags and arguments of a COPY/ADD: `--from=x`, sources, destination (exec form or plain). */
function copyParts(instruction: Instruction): { from?: string; sources: string[]; destination: string } {
  const words = instruction.text.startsWith("[") ? (JSON.parse(instruction.text) as string[]) : instruction.text.split(/\s+/);
  const flags = words.filter((word) => word.startsWith("--"));
  const rest = words.filter((word) => !word.startsWith("--"));
  const from = flags.find((flag) => flag.startsWith("--from="))?.slice("--from=".length);
  return { from, sources: rest.slice(0, -1), destination: rest.at(-1) as string };
}

/** Whether a simple glob (`*`, `**`) matches a path. */
function globMatches(pattern: string, path: string): boolean {
  const expression = pattern
    .split("**/")
    .map((part) =>
      part
        .split("*")
        .map((piece) => piece.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
        .join("[^/]*"),
    )
    .join("(?:.*/)?");
  return new RegExp(`^${expression}(?:/.*)?$`).test(path);
}

const dockerignore = readFileSync(join(workspace, ".dockerignore"), "utf8")
  .split("\n")
  .map((line) => line.trim())
  .filter((line) => line !== "" && !line.startsWith("#"));

function args(stage: Stage): string[] {
  return stage.instructions.filter((instruction) => instruction.keyword === "ARG").map((instruction) => instruction.text);
}

describe("the Dockerfile", () => {
  it("builds in stages: the MongoDB tools, the workspace, the npm install, the image", () => {
    expect(stages.map((stage) => stage.name)).toEqual(["mongo-tools-build", "build", "install", "runtime"]);
    expect(dockerfile.startsWith("# syntax=docker/dockerfile:1")).toBe(true);
    // A named build context replaces a stage of the same name: they must differ.
    for (const name of namedContexts.keys()) expect(stages.map((stage) => stage.name)).not.toContain(name);
    const globalArgs = instructions.slice(
      0,
      instructions.findIndex((instruction) => instruction.keyword === "FROM"),
    );
    const images = Object.fromEntries(globalArgs.map((instruction) => instruction.text.split("=") as [string, string]));
    expect(images.NODE_IMAGE).toMatch(/^docker\.io\/library\/node:(22|24)-[a-z]+-slim$/);
    expect(images.GO_IMAGE).toMatch(/^docker\.io\/library\/golang:1\.(2[6-9]|[3-9]\d)-[a-z]+$/);
    expect(stages.map((stage) => stage.image)).toEqual([variable("GO_IMAGE"), ...Array(3).fill(variable("NODE_IMAGE"))]);
  });

  it("installs hoard from the packed tarballs with plain npm, after a frozen-lockfile build", () => {
    const build = stages.find((stage) => stage.name === "build") as Stage;
    const install = stages.find((stage) => stage.name === "install") as Stage;
    const buildRun = build.instructions.filter((instruction) => instruction.keyword === "RUN").map((instruction) => instruction.text);
    expect(buildRun.join("\n")).toContain("pnpm install --frozen-lockfile");
    expect(buildRun.join("\n")).toContain("bash scripts/pack-packages.sh /packs");
    const pnpm = JSON.parse(readFileSync(join(workspace, "package.json"), "utf8")).packageManager as string;
    expect(args(build)).toContain(`PNPM_VERSION=${pnpm.replace(/^pnpm@/, "")}`);
    const installRun = install.instructions.filter((instruction) => instruction.keyword === "RUN").map((instruction) => instruction.text);
    expect(installRun.join("\n")).toMatch(/npm install --omit=dev [^\n]*\/packs\/\*\.tgz/);
    expect(install.instructions.map((instruction) => instruction.text)).toContain("--from=build /packs /packs");
  });

  it("runs hoard under tini as a numeric non-root user", () => {
    const users = runtime.instructions.filter((instruction) => instruction.keyword === "USER");
    expect(users).toHaveLength(1);
    const [user, group] = (users[0] as Instruction).text.split(":");
    expect(Number(user)).toBeGreaterThan(0);
    expect(Number(group)).toBeGreaterThan(0);
    const entrypoint = runtime.instructions.filter((instruction) => instruction.keyword === "ENTRYPOINT");
    expect(entrypoint).toHaveLength(1);
    // Exec form: no shell between tini and hoard, so SIGTERM reaches hoard.
    expect(JSON.parse((entrypoint[0] as Instruction).text)).toEqual(["/usr/bin/tini", "--", "hoard"]);
    const env = runtime.instructions.filter((instruction) => instruction.keyword === "ENV").map((instruction) => instruction.text);
    expect(env.join(" ")).toContain(`PATH="/opt/hoard/node_modules/.bin:${variable("PATH")}"`);
  });

  it("carries tini and the PostgreSQL, MariaDB, SQLite and MongoDB client tools", () => {
    const run = runtime.instructions
      .filter((instruction) => instruction.keyword === "RUN")
      .map((instruction) => instruction.text)
      .join("\n");
    const install = /apt-get install --yes --no-install-recommends tini ([^&]*)/.exec(run)?.[1] ?? "";
    expect(install.split(/\s+/)).toEqual(expect.arrayContaining(["mariadb-client", "sqlite3", variable("postgresql_clients")]));
    expect(run).toContain("postgresql-client-%s");
    expect(run).toContain("postgresql_clients=postgresql-client;");
    expect(args(runtime).find((arg) => arg.startsWith("POSTGRESQL_CLIENT_MAJORS="))).toMatch(/"(1[4-9] ?)+"/);
    expect(run).toContain("apt-get clean");
    expect(run).toContain("rm -rf /var/lib/apt/lists/* /var/cache/apt/*");
    const copies = runtime.instructions.filter((instruction) => instruction.keyword === "COPY").map(copyParts);
    expect(copies).toContainEqual({
      from: "mongo-tools-build",
      sources: ["/out/mongodump", "/out/mongorestore"],
      destination: "/usr/local/bin/",
    });
  });

  it("keeps secrets out of ARG and ENV", () => {
    for (const instruction of instructions.filter((entry) => entry.keyword === "ARG" || entry.keyword === "ENV")) {
      const names = [...instruction.text.matchAll(/(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)(?==|\s|$)/g)].map((match) => match[1] as string);
      for (const name of names) expect(name, `line ${instruction.line}`).not.toMatch(/pass|secret|token|key|credential|auth|url/i);
      expect(instruction.text, `line ${instruction.line}`).not.toMatch(/:\/\/[^/\s]*@/);
    }
  });

  it("copies only what exists in the build context and is not ignored, or in its named context", () => {
    const stageNames = new Set(stages.map((stage) => stage.name));
    const copies = stages.flatMap((stage) =>
      stage.instructions.filter((instruction) => instruction.keyword === "COPY" || instruction.keyword === "ADD"),
    );
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      const { from, sources } = copyParts(copy);
      if (from !== undefined && stageNames.has(from)) continue;
      let root = workspace;
      if (from !== undefined) {
        const context = namedContexts.get(from);
        expect(context, `COPY --from=${from} (line ${copy.line}) is a stage or a documented --build-context`).toBeDefined();
        root = join(workspace, context as string);
      }
      for (const source of sources) {
        const directory = join(root, source.includes("/") ? source.slice(0, source.lastIndexOf("/")) : ".");
        const pattern = source.slice(source.lastIndexOf("/") + 1);
        const found = existsSync(directory) ? readdirSync(directory).filter((name) => globMatches(pattern, name)) : [];
        expect(found.length, `line ${copy.line}: ${source} exists under ${root}`).toBeGreaterThan(0);
        if (from === undefined) {
          const ignoredBy = dockerignore.filter((ignore) => globMatches(ignore, source.replace(/\/$/, "")));
          expect(ignoredBy, `line ${copy.line}: ${source} is excluded by .dockerignore`).toEqual([]);
        }
      }
    }
  });

  it("copies every workspace package the lockfile install needs", () => {
    const build = stages.find((stage) => stage.name === "build") as Stage;
    const copied = build.instructions
      .filter((instruction) => instruction.keyword === "COPY")
      .flatMap((instruction) => copyParts(instruction).sources);
    const globs = [...readFileSync(join(workspace, "pnpm-workspace.yaml"), "utf8").matchAll(/^\s+-\s+(\S+)\/\*$/gm)].map(
      (match) => match[1],
    );
    expect(globs.length).toBeGreaterThan(0);
    for (const glob of globs) expect(copied).toContain(glob);
    for (const file of ["package.json", "pnpm-lock.yaml", "pnpm-workspace.yaml", "tsconfig.base.json"]) expect(copied).toContain(file);
  });

  it("keeps dependencies, builds and history out of the build context", () => {
    for (const path of ["node_modules", "packages/core/node_modules", "packages/core/dist", ".git", ".cache/bin"]) {
      expect(
        dockerignore.some((ignore) => globMatches(ignore, path)),
        path,
      ).toBe(true);
    }
  });
});
