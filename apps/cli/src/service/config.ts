import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import {
  type BackupMode,
  type CompressionFormat,
  describeError,
  type EncryptionOptions,
  HoardError,
  parseDuration,
  type RetentionPolicy,
} from "@hoard/core";
import type { SettingValue } from "@hoard/core/plugin";
import { parseDocument } from "yaml";
import type * as z from "zod";
import { environmentVariable, secretVariable } from "../environment.js";
import { type ConfigFile, configSchema, type JobFields, secretSettingNames } from "./config-schema.js";
import { defaultNotifyRetries, defaultNotifyTimeoutMs } from "./notify.js";
import { createRedactor, type Redactor } from "./redact.js";

/** Where notifications of one job go, and how hard hoard tries. */
export interface NotifyConfig {
  healthcheck?: string;
  webhooks: { url: string; secret?: string }[];
  /** The most one notification may take, retries included. */
  timeoutMs: number;
  retries: number;
}

/** One job, with the defaults applied, secrets substituted and every value checked. */
export interface JobConfig {
  name: string;
  database: string;
  storage: string;
  prefix: string;
  mode: BackupMode;
  schedule: string;
  /** IANA time zone of the schedule; UTC when unset. */
  timezone?: string;
  /** Unset: zstd, or none for a dump its tool compressed already (core decides, see BackupOptions). */
  compression?: CompressionFormat;
  /** Unset: the compression's default level. */
  compressionLevel?: number;
  /** Blocks compressed at the same time; unset: core's default (the cores, within libuv's pool). */
  compressionThreads?: number;
  dumpOptions: string[];
  /** Storage requests and database connections; unset: `hoard run --timeout` (default 15 s). */
  timeoutMs?: number;
  verify: boolean;
  encryption?: EncryptionOptions;
  /** Pruned after each successful backup when set. */
  retention?: RetentionPolicy;
  notify: NotifyConfig;
  /** /healthz fails when the run of a scheduled time has not succeeded this long after it. */
  graceMs: number;
  /**
   * The plugins' settings bag (storages and drivers), as written; each plugin parses its own. Over
   * `hoard run`'s own plugin flags and `HOARD_*` variables, which act as defaults for every job.
   */
  settings: Record<string, SettingValue>;
}

export interface ServiceConfig {
  /** The file as named on the command line, for messages. */
  file: string;
  concurrency: number;
  /** host and port of /metrics and /healthz, or undefined for none. */
  listen?: { host: string; port: number };
  jobs: JobConfig[];
  /** Removes every secret the file resolved (substituted or written in a secret field) from a text. */
  redact: Redactor;
}

export const defaultListen = "127.0.0.1:9464";
export const defaultGraceMs = 3_600_000;

/** A config file that does not validate: every problem, each naming the file, the job and the field. */
export class ConfigError extends HoardError {
  constructor(readonly problems: string[]) {
    super(
      "INVALID_ARGUMENT",
      problems.length === 1 ? (problems[0] as string) : `${problems[0]} (and ${problems.length - 1} more: see hoard config check)`,
    );
  }
}

/** `jobs.shop.notify.webhooks[0].url` */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const part of path) {
    if (typeof part === "number") text += `[${part}]`;
    else text += text ? `.${String(part)}` : String(part);
  }
  return text;
}

/** Fields whose values are secrets wherever they come from: redacted from every log line and message. */
function isSecretPath(path: readonly PropertyKey[], secretSettings: Set<string>): boolean {
  const last = path.at(-1);
  const parent = path.at(-2);
  if (typeof last === "number") return false;
  if (last === "passphrase" || last === "secret" || last === "healthcheck") return true;
  if (last === "url" && typeof parent === "number") return true; // a webhook's URL may carry a token
  return parent === "settings" && typeof last === "string" && secretSettings.has(last);
}

interface Substitution {
  problems: string[];
  secrets: string[];
  /** Environment variables substituted into secret fields: removed so dump tools do not inherit them. */
  secretVariables: Set<string>;
}

function lookupVariable(name: string): string | undefined {
  return process.env[name] ?? secretVariable(name) ?? (name === "HOARD_DATABASE_URL" ? environmentVariable(name) : undefined);
}

/**
 * Replaces `${VAR}` with the environment variable and `${file:PATH}` with the file's contents (the
 * trailing newline removed; a relative path is relative to the config file), in every string of
 * the tree; `$${` stands for a literal `${`. Values substituted into secret fields, file contents,
 * and database URLs' passwords are collected for redaction.
 */
async function substitute(
  value: unknown,
  path: PropertyKey[],
  baseDirectory: string,
  state: Substitution,
  secretSettings: Set<string>,
): Promise<unknown> {
  if (Array.isArray(value)) {
    return Promise.all(value.map((item, index) => substitute(item, [...path, index], baseDirectory, state, secretSettings)));
  }
  if (value !== null && typeof value === "object") {
    const result: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      result[key] = await substitute(item, [...path, key], baseDirectory, state, secretSettings);
    }
    return result;
  }
  if (typeof value !== "string") return value;
  const secretField = isSecretPath(path, secretSettings);
  const where = formatPath(path);
  let text = "";
  let last = 0;
  for (const match of value.matchAll(/\$?\$\{([^}]*)\}/g)) {
    text += value.slice(last, match.index);
    last = match.index + match[0].length;
    if (match[0].startsWith("$$")) {
      text += match[0].slice(1);
      continue;
    }
    const reference = (match[1] ?? "").trim();
    if (reference.startsWith("file:")) {
      const file = resolve(baseDirectory, reference.slice(5).trim());
      try {
        const contents = (await readFile(file, "utf8")).replace(/\r?\n$/, "");
        state.secrets.push(contents);
        text += contents;
      } catch (error) {
        state.problems.push(`${where}: cannot read ${file}: ${describeError(error).replace(/^[A-Z]+: /, "")}`);
      }
      continue;
    }
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(reference)) {
      state.problems.push(`${where}: \${${reference}} is not a variable name or file:PATH`);
      continue;
    }
    const variable = lookupVariable(reference);
    if (variable === undefined) {
      state.problems.push(`${where}: the environment variable ${reference} is not set`);
      continue;
    }
    if (secretField || path.at(-1) === "database") state.secretVariables.add(reference);
    text += variable;
  }
  text += value.slice(last);
  if (secretField) state.secrets.push(text);
  if (path.at(-1) === "database") state.secrets.push(...passwordOf(text));
  return text;
}

/** A URL's password, as written and decoded, for redaction. */
function passwordOf(url: string): string[] {
  try {
    const { password } = new URL(url);
    return password ? [password, decodeURIComponent(password)] : [];
  } catch {
    return [];
  }
}

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") {
    return `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((key) => `"${key}"`).join(", ")}`;
  }
  if (issue.code === "invalid_type") {
    return issue.input === undefined ? "required" : `expected ${issue.expected}`;
  }
  if (issue.code === "invalid_value" && "values" in issue) {
    return `use one of ${issue.values.map(String).join(", ")}`;
  }
  if (issue.code === "too_small" && issue.origin === "number") return `use ${issue.minimum} or more`;
  if (issue.code === "too_big" && issue.origin === "number") return `use ${issue.maximum} or less`;
  return issue.message;
}

function merge(defaults: JobFields | undefined, job: JobFields): JobFields {
  if (!defaults) return job;
  const merged: JobFields = { ...defaults, ...job };
  if (defaults.settings || job.settings) merged.settings = { ...defaults.settings, ...job.settings };
  if (defaults.notify || job.notify) merged.notify = { ...defaults.notify, ...job.notify };
  return merged;
}

function retentionOf(fields: NonNullable<JobFields["retention"]>): RetentionPolicy | undefined {
  const { olderThan, ...keep } = fields;
  const policy: RetentionPolicy = { ...keep };
  if (olderThan !== undefined) policy.olderThanMs = parseDuration(olderThan);
  return Object.keys(policy).length > 0 ? policy : undefined;
}

function settingValue(value: unknown): SettingValue {
  return value as SettingValue;
}

function resolveJob(name: string, fields: JobFields, problems: string[]): JobConfig | undefined {
  const missing = (["database", "storage", "schedule"] as const).filter((key) => fields[key] === undefined);
  for (const key of missing) problems.push(`jobs.${name}.${key}: required (in the job or in defaults)`);
  if (missing.length > 0) return undefined;
  const settings: Record<string, SettingValue> = {};
  for (const [key, value] of Object.entries(fields.settings ?? {})) if (value !== undefined) settings[key] = settingValue(value);
  const job: JobConfig = {
    name,
    database: fields.database as string,
    storage: fields.storage as string,
    prefix: fields.prefix ?? name,
    mode: fields.mode ?? "stream",
    schedule: fields.schedule as string,
    dumpOptions: fields.dumpOptions ?? [],
    verify: fields.verify ?? false,
    notify: {
      webhooks: fields.notify?.webhooks ?? [],
      timeoutMs: fields.notify?.timeout ? parseDuration(fields.notify.timeout) : defaultNotifyTimeoutMs,
      retries: fields.notify?.retries ?? defaultNotifyRetries,
    },
    graceMs: fields.grace ? parseDuration(fields.grace) : defaultGraceMs,
    settings,
  };
  if (fields.notify?.healthcheck) job.notify.healthcheck = fields.notify.healthcheck;
  // Checked against the compression by the schema (config-schema.ts), defaults included.
  if (fields.compression !== undefined) job.compression = fields.compression;
  if (fields.compressionLevel !== undefined) job.compressionLevel = fields.compressionLevel;
  if (fields.compressionThreads !== undefined) job.compressionThreads = fields.compressionThreads;
  if (fields.timezone) job.timezone = fields.timezone;
  if (fields.timeout !== undefined)
    job.timeoutMs = typeof fields.timeout === "string" ? parseDuration(fields.timeout) : Number(fields.timeout);
  if (fields.encryption) job.encryption = fields.encryption;
  const retention = fields.retention && retentionOf(fields.retention);
  if (retention) job.retention = retention;
  return job;
}

function parseListen(listen: string | false | undefined): ServiceConfig["listen"] {
  if (listen === false) return undefined;
  const text = listen ?? defaultListen;
  const split = text.lastIndexOf(":");
  return { host: text.slice(0, split).replace(/^\[(.*)\]$/, "$1"), port: Number(text.slice(split + 1)) };
}

/**
 * Reads, substitutes and validates a config file. Every problem names the file, the job and the
 * field (`hoard.yaml: jobs.shop.schedule: invalid cron expression`) and never quotes a secret.
 */
export async function loadConfig(file: string): Promise<ServiceConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new HoardError("INVALID_ARGUMENT", `cannot read the config file ${file}: ${describeError(error).replace(/^[A-Z]+: /, "")}`);
  }
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      document.errors.map((error) => {
        const position = error.linePos?.[0];
        const message = (error.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
        return `${file}${position ? `:${position.line}:${position.col}` : ""}: ${message}`;
      }),
    );
  }
  const raw = document.toJS() as unknown;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new ConfigError([`${file}: expected a mapping with jobs:`]);
  const secretSettings = secretSettingNames();
  const state: Substitution = { problems: [], secrets: [], secretVariables: new Set() };
  const substituted = await substitute(raw, [], dirname(resolve(file)), state, secretSettings);
  const redact = createRedactor(state.secrets);
  if (state.problems.length > 0) throw new ConfigError(state.problems.map((problem) => redact(`${file}: ${problem}`)));
  const parsed = configSchema().safeParse(substituted);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const where = formatPath(issue.path);
        return redact(`${file}: ${where ? `${where}: ` : ""}${issueMessage(issue)}`);
      }),
    );
  }
  const config: ConfigFile = parsed.data;
  const problems: string[] = [];
  const jobs: JobConfig[] = [];
  for (const [name, fields] of Object.entries(config.jobs)) {
    const job = resolveJob(name, merge(config.defaults, fields), problems);
    if (job) jobs.push(job);
  }
  // Two jobs writing one storage under one prefix would each count the other's backups in their
  // retention (and delete them): refused.
  const owners = new Map<string, string>();
  for (const job of jobs) {
    const place = `${job.storage.replace(/\/+$/, "")}\n${job.prefix}`;
    const owner = owners.get(place);
    if (owner !== undefined) {
      problems.push(
        `jobs.${job.name}.prefix: jobs.${owner} already stores its backups as ${job.prefix} in this storage; give each job its own prefix`,
      );
    }
    owners.set(place, job.name);
  }
  if (problems.length > 0) throw new ConfigError(problems.map((problem) => redact(`${file}: ${problem}`)));
  for (const name of state.secretVariables) delete process.env[name];
  return { file, concurrency: config.concurrency ?? 1, listen: parseListen(config.listen), jobs, redact };
}
