import { compressionLevels, defaultCompression, parseDuration, validateCron, validatePrefix } from "@hoard/core";
import { commonSettings, parseSetting, type SettingDeclaration } from "@hoard/core/plugin";
import * as z from "zod";
import { pluginsOf } from "../plugins.js";

/** How a secret is written in the file (spelled with \u0024 so no linter takes it for a template). */
const secretHint = "use \u0024{VAR} or \u0024{file:PATH}";

/**
 * The schema of `hoard.yaml`, the one source of both the validation (`hoard config check`, `hoard
 * run`) and the published JSON Schema (`hoard config schema`). Plugin settings come from the
 * installed plugins' declarations, so the schema is built after they are loaded.
 *
 * Keys are camelCase like the plugins' setting names (`compressionLevel`, `s3Endpoint`). Every
 * job field may also be given once in `defaults`; a job's `settings` and `notify` are merged key by
 * key over the defaults', every other field replaces the default.
 */

/** Problems about a value never quote it: it may be a secret substituted from the environment. */
function durationText(what: string) {
  return z
    .string()
    .refine((text) => isDuration(text), { message: "use a duration such as 30s, 15m, 1h or 7d" })
    .describe(`${what}, a duration such as 30s, 15m, 1h or 7d`);
}

function isDuration(text: string): boolean {
  try {
    parseDuration(text);
    return true;
  } catch {
    return false;
  }
}

function passes(check: (value: string) => unknown): (value: string) => boolean {
  return (value) => {
    try {
      check(value);
      return true;
    } catch {
      return false;
    }
  };
}

/** A whole-object rule is checked only when its fields are valid, so that one mistake gives one message. */
function onlyWhenValid(payload: { issues: readonly unknown[] }): boolean {
  return payload.issues.length === 0;
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** One plugin setting: its shape for the JSON Schema, and its declaration's own checks for validation. */
function settingSchema(setting: SettingDeclaration): z.ZodType {
  const base =
    setting.kind === "boolean"
      ? z.boolean()
      : setting.kind === "integer"
        ? z.union([z.int(), z.string()])
        : setting.kind === "bytes"
          ? z.union([z.int(), z.string()])
          : setting.kind === "choice"
            ? z.enum((setting.choices ?? []) as [string, ...string[]])
            : z.string();
  return base
    .superRefine((value, context) => {
      try {
        parseSetting(setting, value);
      } catch (error) {
        // The plugin's message names its flag (`invalid --s3-part-size: ...`); here the key is the name.
        context.addIssue({ code: "custom", message: (error as Error).message.replace(/^invalid --[\w-]+: /, "") });
      }
    })
    .describe(`${setting.help}${setting.secret ? ` (a secret: ${secretHint})` : ""}`);
}

/** Every installed plugin's settings, by name; storages and drivers share one bag per job. */
function settingsSchema() {
  const shape: Record<string, z.ZodType> = {};
  for (const plugin of [...pluginsOf("storage"), ...pluginsOf("driver")]) {
    for (const setting of plugin.settings) shape[setting.name] = settingSchema(setting).optional();
  }
  return z.strictObject(shape).describe("plugin settings by name, e.g. s3Endpoint, gcsProject, mongodbEngine (see hoard backup --help)");
}

/** The secret plugin settings' names (`gcsPrivateKey`), whose values are redacted everywhere. */
export function secretSettingNames(): Set<string> {
  return new Set(
    [...pluginsOf("storage"), ...pluginsOf("driver")].flatMap((plugin) => plugin.settings.filter((s) => s.secret).map((s) => s.name)),
  );
}

const keep = (what: string) => z.int().min(0).optional().describe(`keep the newest backup of each of the last N ${what} that have one`);

const retentionSchema = z
  .strictObject({
    keepLast: z.int().min(0).optional().describe("keep the N newest backups"),
    keepHourly: keep("hours"),
    keepDaily: keep("days"),
    keepWeekly: keep("ISO weeks"),
    keepMonthly: keep("months"),
    keepYearly: keep("years"),
    olderThan: durationText("olderThan")
      .optional()
      .describe("keep every backup taken less than this before the newest one (restic's --keep-within), e.g. 30d"),
    keepMin: z.int().min(1).optional().describe("never delete the newest N backups, whatever the rules say (default 1)"),
  })
  .refine(
    (policy) =>
      ["keepLast", "keepHourly", "keepDaily", "keepWeekly", "keepMonthly", "keepYearly"].some(
        (rule) => ((policy[rule as keyof typeof policy] as number | undefined) ?? 0) > 0,
      ) ||
      (policy.olderThan !== undefined && isDuration(policy.olderThan) && parseDuration(policy.olderThan) > 0),
    {
      message: "give at least one rule: keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly or olderThan",
      when: onlyWhenValid,
    },
  )
  .describe(
    "prune after each successful backup of the job (restic's forget rules, as hoard prune); the newest backup is never deleted (keepMin)",
  );

const webhookSchema = z
  .strictObject({
    url: z.url({ protocol: /^https?$/, error: "use an http:// or https:// URL" }).describe("receives a JSON POST after each run"),
    secret: z.string().min(1).optional().describe(`HMAC-SHA256 key: the body's signature goes in X-Hoard-Signature-256 (${secretHint})`),
  })
  .describe("a webhook");

const notifySchema = z
  .strictObject({
    healthcheck: z
      .url({ protocol: /^https?$/, error: "use an http:// or https:// URL" })
      .optional()
      .describe("a healthchecks.io check URL: <url>/start, <url> on success, <url>/fail with the error"),
    webhooks: z.array(webhookSchema).optional(),
    timeout: durationText("notify.timeout").optional().describe("the most one notification may take, retries included (default 10s)"),
    retries: z.int().min(0).max(10).optional().describe("how many times a failed notification is sent again (default 2)"),
  })
  .describe("alerts");

const encryptionSchema = z
  .strictObject({
    recipients: z
      .array(z.string().regex(/^age1[0-9a-z]+$/, "an age recipient starts with age1"))
      .min(1)
      .optional(),
    passphrase: z.string().min(1).optional().describe(`a passphrase (${secretHint})`),
  })
  .refine((value) => !(value.recipients && value.passphrase), { message: "give recipients or a passphrase, not both", when: onlyWhenValid })
  .refine((value) => value.recipients || value.passphrase, { message: "give recipients or a passphrase", when: onlyWhenValid })
  .describe("encrypt backups in the age format");

/** The fields of one job; all optional here, the required ones are checked after the defaults are applied. */
export function jobSchema() {
  const timeout = commonSettings.settings.find((setting) => setting.name === "timeoutMs") as SettingDeclaration;
  return z.strictObject({
    database: z.string().min(1).optional().describe(`the database URL, e.g. postgresql://app@db/shop (a password: ${secretHint})`),
    storage: z.string().min(1).optional().describe("s3://bucket/prefix, gs://bucket/prefix, file:///dir or a path"),
    prefix: z
      .string()
      .refine(passes(validatePrefix), { message: "invalid prefix: use /-separated names without # ? % \\ or empty parts" })
      .optional()
      .describe("backups are named <prefix>-<yyyyMMddHHmmss>.<ext> (default: the job's name)"),
    mode: z.enum(["stream", "file"]).optional().describe("stream: no temporary file; file: dump to disk, then upload"),
    schedule: z
      .string()
      .refine(passes(validateCron), { message: "invalid cron expression" })
      .optional()
      .describe("a cron expression: 5 fields, or 6 with seconds first"),
    timezone: z.string().refine(isTimeZone, { message: "unknown time zone" }).optional().describe("the schedule's time zone (default UTC)"),
    compression: z
      .enum(["gzip", "zstd", "none"])
      .optional()
      .describe(
        "zstd (.zst, the default), gzip (.gz) or none (the dump as it is); unset, a dump its tool compressed already is stored as it is",
      ),
    compressionLevel: z
      .int()
      .min(0)
      .optional()
      .describe(
        "zstd 1 to 19 (unset: level 3 with a minimum match of 6 bytes, smaller than zstd 3 on dumps); gzip 0 (stored) to 9 (smallest), default 6; not with none",
      ),
    compressionThreads: z
      .int()
      .min(1)
      .optional()
      .describe("blocks compressed at the same time (default: the cores, at most 3 unless UV_THREADPOOL_SIZE is raised)"),
    dumpOptions: z.array(z.string()).optional().describe("arguments passed to the dump tool"),
    timeout: settingSchema(timeout).optional().describe(timeout.help),
    verify: z.boolean().optional().describe("re-read and verify each backup after the upload"),
    encryption: encryptionSchema.optional(),
    retention: retentionSchema.optional(),
    notify: notifySchema.optional(),
    grace: durationText("grace")
      .optional()
      .describe("how long after a scheduled time /healthz waits for its success before it fails (default 1h)"),
    settings: settingsSchema().optional(),
  });
}

/** A job's name: used in logs, metrics labels and the default prefix. */
export const jobNamePattern = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** The whole file. */
export function configSchema() {
  const job = jobSchema();
  return (
    z
      .strictObject({
        concurrency: z.int().min(1).optional().describe("how many jobs may run at the same time (default 1)"),
        listen: z
          .union([z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, "use host:port, e.g. 127.0.0.1:9464"), z.literal(false)])
          .optional()
          .describe("where /metrics and /healthz are served (default 127.0.0.1:9464; false: not at all)"),
        defaults: job.optional().describe("fields every job gets unless it sets them"),
        jobs: z
          .record(z.string().regex(jobNamePattern, "a job's name is letters, digits, _ . and -"), job)
          .refine((jobs) => Object.keys(jobs).length > 0, { message: "name at least one job" })
          .describe("the jobs, by name"),
      })
      // Also when other fields have problems, so that `hoard config check` names every one.
      .superRefine(checkCompressionLevels, { when: () => true })
      .describe("hoard run's configuration: jobs, their schedules, retention, alerts (docs/unattended.md)")
  );
}

/** What the compression check reads of a job; the fields may be anything when the file has problems. */
interface CompressionFields {
  compression?: unknown;
  compressionLevel?: unknown;
}

/**
 * Each job's compression level against its compression (gzip 0-9, zstd 1-19, none takes none),
 * with the defaults applied: a level and a compression may come from `defaults` and the job.
 * Values of the wrong type are left to their fields' own checks.
 */
function checkCompressionLevels(config: { defaults?: CompressionFields; jobs?: unknown }, context: z.RefinementCtx): void {
  if (typeof config.jobs !== "object" || config.jobs === null) return;
  const defaults: CompressionFields = typeof config.defaults === "object" && config.defaults !== null ? config.defaults : {};
  for (const [name, value] of Object.entries(config.jobs as Record<string, unknown>)) {
    const job: CompressionFields = typeof value === "object" && value !== null ? value : {};
    const compression = job.compression ?? defaults.compression ?? defaultCompression;
    const level = job.compressionLevel ?? defaults.compressionLevel;
    if (typeof level !== "number" || !Number.isInteger(level) || level < 0) continue;
    if (compression !== "gzip" && compression !== "zstd" && compression !== "none") continue;
    const path = job.compressionLevel === undefined ? ["defaults", "compressionLevel"] : ["jobs", name, "compressionLevel"];
    const levels = compression === "none" ? undefined : compressionLevels[compression];
    const message =
      levels === undefined
        ? "compression none takes no level"
        : level > levels.max
          ? `use ${levels.max} or less${compression === "gzip" ? "" : " for zstd"}`
          : level < levels.min
            ? `use ${levels.min} or more for ${compression}`
            : undefined;
    if (message) context.addIssue({ code: "custom", path, message, input: level });
  }
}

export type JobFields = z.infer<ReturnType<typeof jobSchema>>;
export type ConfigFile = z.infer<ReturnType<typeof configSchema>>;

/** The JSON Schema of `hoard.yaml`, for editors (yaml-language-server) and `hoard config schema`. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema(), { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
}
