/**
 * Classifies errors textshift did not throw itself (the AWS SDK, Node's network stack, fetch) into TextshiftErrors,
 * so every error leaving a Lambda or the trainer carries a retry classification in its name. The AWS SDK's own
 * retry classifiers decide what a service error is; Node's socket errors and timeouts are added here.
 */
import { isServerError, isThrottlingError, isTransientError } from '@smithy/core/retry';
import { InternalError, isRetryableName, MissingInputError, TextshiftError, TransientError } from './index.js';

/** undici's (fetch's) socket failures and timeouts: `UND_ERR_SOCKET`, `UND_ERR_CLOSED`, `UND_ERR_*_TIMEOUT`. */
const UNDICI_TRANSIENT = /^UND_ERR_(SOCKET|CLOSED|[A-Z_]*TIMEOUT)$/;
/** How deep a chain of causes is followed (an SDK error wrapping a socket error wrapping ...). */
const MAX_CAUSE_DEPTH = 10;

type SdkErrorLike = Parameters<typeof isTransientError>[0];

/** One link of a cause chain, without its causes: is it a failure that trying again can get past? */
function transientLink(err: object): boolean {
  const e = err as SdkErrorLike & { code?: unknown };
  // An error that crossed a boundary (a worker thread, a Lambda) keeps only its name: the name is the classification.
  if (isRetryableName(e.name)) return true;
  if (typeof e.code === 'string' && UNDICI_TRANSIENT.test(e.code)) return true;
  // The SDK's lists: `$retryable` errors, throttling codes and 429, timeouts, 5xx, Node socket and DNS errors.
  // It never counts an AbortError (a cancelled request); one caused by a timeout is found by its cause.
  return isThrottlingError(e) || isTransientError(e) || isServerError(e);
}

/** Whether err, or anything in its chain of causes, is a transient failure. */
export function isTransient(err: unknown): boolean {
  let link: unknown = err;
  for (let depth = 0; depth <= MAX_CAUSE_DEPTH && typeof link === 'object' && link !== null; depth++) {
    if (transientLink(link)) return true;
    link = (link as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * The TextshiftError of any thrown value: a TextshiftError as it is; anything else wrapped (the original as `cause`,
 * its message kept) as a TransientError when a retry can help (an SDK error marked retryable, throttling, a 5xx or
 * 429 answer, a dropped or refused connection, a DNS failure, a timeout), else as an InternalError.
 */
export function classifyError(err: unknown): TextshiftError {
  if (err instanceof TextshiftError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return isTransient(err) ? new TransientError(message, { cause: err }) : new InternalError(message, { cause: err });
}

/** A request that failed in the network stack: transient when a retry can get past it (a reset, a timeout, DNS). */
export function networkError(message: string, cause: unknown): TextshiftError {
  return isTransient(cause) ? new TransientError(message, { cause }) : new InternalError(message, { cause });
}

/** A request the server refused: gone (404, 410), busy or broken for now (429, 5xx), or refused for good. */
export function httpStatusError(message: string, status: number): TextshiftError {
  if (status === 404 || status === 410) return new MissingInputError(message);
  return status === 429 || status >= 500 ? new TransientError(message) : new InternalError(message);
}
