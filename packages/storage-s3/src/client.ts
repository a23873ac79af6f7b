import { S3Client } from "@aws-sdk/client-s3";
import { isSilence } from "./errors.js";
import type { ResolvedOptions } from "./options.js";

type AnyRetryStrategy = Awaited<ReturnType<S3Client["config"]["retryStrategy"]>>;
type RetryStrategyV2 = Extract<AnyRetryStrategy, { refreshRetryTokenForRetry: unknown }>;

/**
 * Wraps the SDK's retry strategy: it keeps deciding everything, except that a call whose
 * attempts keep ending in silence stops after `silentAttempts`, so a hung endpoint fails the call
 * within about a minute even with a large `maxAttempts`.
 */
function boundSilence(inner: RetryStrategyV2, silentAttempts: number): RetryStrategyV2 {
  return {
    acquireInitialRetryToken: (scope) => inner.acquireInitialRetryToken(scope),
    async refreshRetryTokenForRetry(token, errorInfo) {
      if (isSilence(errorInfo.error) && token.getRetryCount() + 1 >= silentAttempts) {
        throw new Error("No retry token available: the endpoint stayed silent");
      }
      return inner.refreshRetryTokenForRetry(token, errorInfo);
    },
    recordSuccess: (token) => inner.recordSuccess(token),
  };
}

/** The S3 client for resolved options, with the silence bound on its retries. */
export function createClient(settings: ResolvedOptions): S3Client {
  const client = new S3Client(settings.clientConfig);
  const defaultStrategy = client.config.retryStrategy;
  let strategy: Promise<AnyRetryStrategy> | undefined;
  // The retry middleware asks the client's config for the strategy before every call.
  client.config.retryStrategy = () => {
    strategy ??= defaultStrategy().then((inner) =>
      "refreshRetryTokenForRetry" in inner ? boundSilence(inner, settings.silentAttempts) : inner,
    );
    return strategy;
  };
  return client;
}
