import { readFileSync } from "node:fs";
import { describeError, type Logger } from "@hoard/core";
import type { Argv } from "yargs";
import { durationOption, integerOption, UsageError } from "../arguments.js";
import { declareSettingOption, secretVariable, takeSecretVariables } from "../environment.js";
import type { CliLogger, ServiceEvent } from "../output.js";
import type { NotifyConfig } from "./config.js";
import type { Metrics } from "./metrics.js";
import { defaultNotifyRetries, defaultNotifyTimeoutMs, deliver, healthcheckUrl, sendWebhook, type WebhookBody } from "./notify.js";

/** The webhook secret's variable: a secret, so never a flag. */
export const webhookSecretVariable = "HOARD_WEBHOOK_SECRET";

function httpUrl(flag: string) {
  return (value: unknown): string => {
    const text = String(Array.isArray(value) ? value.at(-1) : value).trim();
    let url: URL | undefined;
    try {
      url = new URL(text);
    } catch {}
    // Never quote the URL: a healthcheck's or webhook's URL is a capability.
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
      throw new UsageError(`invalid --${flag}: use an http:// or https:// URL`);
    }
    return text;
  };
}

const parseHealthcheckUrl = httpUrl("healthcheck-url");
const parseWebhookUrl = httpUrl("webhook-url");
const parseNotifyTimeout = durationOption("notify-timeout");
const parseNotifyRetries = integerOption("notify-retries", 0, 10);

/**
 * One-shot alerting and metrics for `hoard backup`: `--healthcheck-url` (healthchecks.io pings:
 * start, success, fail), `--webhook-url` (a JSON POST after the run, signed with
 * HOARD_WEBHOOK_SECRET or `--webhook-secret-file`), `--notify-timeout`, `--notify-retries`, and
 * `--metrics-file` for node_exporter's textfile collector.
 */
export function withReportingOptions<T>(yargs: Argv<T>): Argv<T> {
  takeSecretVariables([webhookSecretVariable]);
  declareSettingOption("webhook-secret", { secret: true, variable: webhookSecretVariable });
  const group = "Alerts and metrics:";
  return yargs
    .option("healthcheck-url", {
      type: "string",
      group,
      coerce: parseHealthcheckUrl,
      describe: "ping this healthchecks.io check: <url>/start, <url> on success, <url>/fail with the error (also HOARD_HEALTHCHECK_URL)",
    })
    .option("webhook-url", {
      type: "string",
      array: true,
      group,
      coerce: (values: unknown[]) => values.map((value) => parseWebhookUrl(value)),
      describe: "POST a JSON report (job, status, url, size, durationMs, error) here after the run (repeatable)",
    })
    .option("webhook-secret-file", {
      type: "string",
      group,
      describe: `sign webhooks with HMAC-SHA256 (header X-Hoard-Signature-256) using the key in this file, or in ${webhookSecretVariable}`,
    })
    .option("webhook-secret", {
      type: "string",
      hidden: true,
      coerce: () => {
        throw new UsageError(
          `--webhook-secret is a secret and is not taken from the command line: set ${webhookSecretVariable} or use --webhook-secret-file`,
        );
      },
    })
    .option("notify-timeout", {
      type: "string",
      group,
      default: "10s",
      coerce: parseNotifyTimeout,
      describe: "the most one notification may take, retries included; a late one is logged, never fails the backup",
    })
    .option("notify-retries", {
      type: "string",
      group,
      default: String(defaultNotifyRetries),
      coerce: parseNotifyRetries,
      describe: "how many times a failed notification is sent again, with backoff",
    })
    .option("metrics-file", {
      type: "string",
      group,
      describe: "write Prometheus metrics here (atomically) for node_exporter's textfile collector, e.g. /var/lib/node_exporter/hoard.prom",
    }) as unknown as Argv<T>;
}

/** What a finished backup reports. */
export interface RunOutcome {
  url: string;
  size: number;
  durationMs: number;
}

/** Tells the configured receivers that a job started, succeeded or failed. Never throws. */
export interface Reporter {
  started(): Promise<void>;
  succeeded(outcome: RunOutcome): Promise<void>;
  /** `stored`: the backup was stored, but what came after it (retention) failed. */
  failed(error: unknown, stored?: RunOutcome): Promise<void>;
}

/** Where one job's reports go. */
export interface ReportTargets {
  job: string;
  notify: NotifyConfig;
  /** The live metrics of `hoard run`. */
  metrics?: Metrics;
  /** A one-shot run's textfile. */
  metricsFile?: string;
  logger: CliLogger;
  /** Removes secrets from an error's line before it is sent anywhere. */
  redact?: (text: string) => string;
}

/** The one line of an error that notifications carry. */
export function errorLine(error: unknown): string {
  return describeError(error).split("\n")[0] ?? "";
}

function summary(outcome: RunOutcome): string {
  return `stored ${outcome.url} (${outcome.size} bytes in ${(outcome.durationMs / 1000).toFixed(1)} s)`;
}

/** The reporter of one job: healthcheck pings, webhooks and metrics, all at once and within the notify timeout. */
export function createJobReporter(targets: ReportTargets): Reporter {
  const { job, notify, logger } = targets;
  const redact = targets.redact ?? ((text: string) => text);
  const delivery = { timeoutMs: notify.timeoutMs, retries: notify.retries };
  const updateMetrics = async (update: (metrics: Metrics) => void) => {
    if (targets.metrics) update(targets.metrics);
    if (!targets.metricsFile) return;
    try {
      // prom-client is loaded only when a metrics file is asked for: it costs every other backup ~13 MiB.
      const { updateMetricsFile } = await import("./metrics.js");
      await updateMetricsFile(targets.metricsFile, (metrics) => {
        metrics.declare(job);
        update(metrics);
      });
    } catch (error) {
      logger.event(warning("metrics-file-failed", errorLine(error)));
    }
  };
  const ping = (step: "start" | "success" | "fail", body: string) =>
    notify.healthcheck
      ? deliver(healthcheckUrl(notify.healthcheck, step), { body, what: `healthcheck ${step} ping` }, delivery, logger)
      : Promise.resolve(true);
  const webhooks = (body: WebhookBody) => notify.webhooks.map((webhook) => sendWebhook(webhook, body, delivery, logger));
  return {
    async started() {
      await Promise.all([updateMetrics((metrics) => metrics.started(job)), ping("start", "")]);
    },
    async succeeded(outcome) {
      const body: WebhookBody = { job, status: "succeeded", time: new Date().toISOString(), ...outcome };
      await Promise.all([
        updateMetrics((metrics) => {
          metrics.stored(job, outcome);
          metrics.finished(job, false);
        }),
        ping("success", summary(outcome)),
        ...webhooks(body),
      ]);
    },
    async failed(error, stored) {
      const line = redact(errorLine(error));
      const body: WebhookBody = { job, status: "failed", time: new Date().toISOString(), ...stored, error: line };
      await Promise.all([
        updateMetrics((metrics) => {
          if (stored) metrics.stored(job, stored);
          metrics.finished(job, true);
        }),
        ping("fail", line),
        ...webhooks(body),
      ]);
    },
  };
}

function warning(event: string, message: string): ServiceEvent {
  return { type: "service", level: "warn", event, message };
}

function readSecretFile(path: string): string {
  try {
    const secret = readFileSync(path, "utf8").replace(/\r?\n$/, "");
    if (!secret) throw new UsageError(`--webhook-secret-file ${path} is empty`);
    return secret;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`--webhook-secret-file ${path}: ${describeError(error).replace(/^[A-Z]+: /, "")}`);
  }
}

/** A core Logger seen as the CLI's (events it does not know are dropped by type). */
function asCliLogger(logger: Logger): CliLogger {
  return "finish" in logger ? (logger as CliLogger) : { event: (event) => logger.event(event as never), finish() {} };
}

/** The reporter for the parsed arguments of one `hoard backup` (a no-op when none is configured). */
export function createReporter(args: Record<string, unknown>, job: string, logger: Logger): Reporter {
  const secretFile = args.webhookSecretFile as string | undefined;
  const secret = secretFile !== undefined ? readSecretFile(secretFile) : secretVariable(webhookSecretVariable);
  const webhookUrls = (args.webhookUrl as string[] | undefined) ?? [];
  const notify: NotifyConfig = {
    webhooks: webhookUrls.map((url) => (secret ? { url, secret } : { url })),
    timeoutMs: (args.notifyTimeout as number | undefined) ?? defaultNotifyTimeoutMs,
    retries: (args.notifyRetries as number | undefined) ?? defaultNotifyRetries,
  };
  if (typeof args.healthcheckUrl === "string") notify.healthcheck = args.healthcheckUrl;
  const targets: ReportTargets = { job, notify, logger: asCliLogger(logger) };
  if (typeof args.metricsFile === "string") targets.metricsFile = args.metricsFile;
  return createJobReporter(targets);
}
