import { classifyError } from '#src/errors/classify.js';
import { redactError } from '#src/errors/redact.js';

/**
 * The handler with its errors classified on the way out (`classifyError`): each leaves as a TextshiftError, and Lambda
 * reports its `name` as the error type, which is the `Error` the state machine's Retry and Catch match. So a
 * throttled S3 request leaves as `TransientError` (retried) and a bad shard as `DataError` (recorded, not retried).
 * Its message and stack leave with any credentials in a URL redacted: Lambda logs them and the run records them.
 */
export function classified<A extends unknown[], R>(handler: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A): Promise<R> => {
    try {
      return await handler(...args);
    } catch (err) {
      throw redactError(classifyError(err));
    }
  };
}
