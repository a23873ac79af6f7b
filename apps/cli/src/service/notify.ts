import { createHmac } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { describeError } from "@hoard/core";
import type { CliLogger } from "../output.js";

/** How hard one notification is tried. */
export interface DeliveryOptions {
  /** The most one notification may take, all attempts and pauses included. */
  timeoutMs: number;
  /** Attempts after the first; each waits twice as long as the one before (from 500 ms), within the budget. */
  retries: number;
}

/** The JSON body of a webhook, after each run. */
export interface WebhookBody {
  job: string;
  status: "succeeded" | "failed";
  /** When the run ended, ISO 8601. */
  time: string;
  /** The stored backup's URL (also when retention failed after it was stored). */
  url?: string;
  size?: number;
  durationMs?: number;
  /** The one-line error of a failed run. */
  error?: string;
}

/** The header that carries `sha256=<hex HMAC-SHA256 of the body>` when the webhook has a secret. */
/** How long one notification may take, retries included, unless the config or a flag says otherwise. */
export const defaultNotifyTimeoutMs = 10_000;
/** How many times an undelivered notification is sent again. */
export const defaultNotifyRetries = 2;

export const signatureHeader = "X-Hoard-Signature-256";

export function signBody(body: string, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** Where a notification went, without the path or query (a healthcheck's UUID, a token). */
export function describeTarget(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "an invalid URL";
  }
}

function retryable(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/**
 * POSTs `body` to `url`, retrying network errors, 5xx, 408 and 429 with backoff, within
 * `timeoutMs` in all. Never throws: a notification that cannot be delivered is logged as a warning
 * naming the receiver's origin (never its path, which may hold a token) and the reason.
 */
export async function deliver(
  url: string,
  request: { body: string; headers?: Record<string, string>; what: string },
  options: DeliveryOptions,
  logger: CliLogger,
): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs;
  let reason = "";
  for (let attempt = 0; attempt <= options.retries; attempt += 1) {
    if (attempt > 0) {
      const pause = Math.min(500 * 2 ** (attempt - 1), deadline - Date.now());
      if (pause <= 0) break;
      await sleep(pause);
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    try {
      const response = await fetch(url, {
        method: "POST",
        body: request.body,
        headers: { "user-agent": "hoard", ...request.headers },
        signal: AbortSignal.timeout(remaining),
        redirect: "follow",
      });
      await response.body?.cancel();
      if (response.ok) return true;
      reason = `HTTP ${response.status}`;
      if (!retryable(response.status)) break;
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause;
      reason =
        (error as Error).name === "TimeoutError"
          ? `no answer within ${Math.round(options.timeoutMs / 1000)} s`
          : describeError(cause ?? error);
    }
  }
  logger.event({
    type: "service",
    level: "warn",
    event: "notification-failed",
    message: `could not deliver the ${request.what} to ${describeTarget(url)}: ${reason || "out of time"}`,
    fields: { target: describeTarget(url), notification: request.what, reason: reason || "out of time" },
  });
  return false;
}

/** The healthchecks.io URL of a step: `<url>/start`, `<url>`, `<url>/fail` (a query string stays at the end). */
export function healthcheckUrl(base: string, step: "start" | "success" | "fail"): string {
  if (step === "success") return base;
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/${step}`;
  return url.toString();
}

/** Sends one webhook: the JSON body, signed when there is a secret. */
export function sendWebhook(
  webhook: { url: string; secret?: string },
  body: WebhookBody,
  options: DeliveryOptions,
  logger: CliLogger,
): Promise<boolean> {
  const text = JSON.stringify(body);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (webhook.secret) headers[signatureHeader] = signBody(text, webhook.secret);
  return deliver(webhook.url, { body: text, headers, what: "webhook" }, options, logger);
}
