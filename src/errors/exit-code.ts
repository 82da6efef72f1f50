import type { TextshiftError } from './index.js';

/** sysexits.h EX_TEMPFAIL: a process that ends with it failed for a transient reason, and AWS Batch retries the job. */
export const EXIT_TEMPFAIL = 75;
/** Any other failure: the job ends, and the state machine's Catch records it. */
export const EXIT_FAILURE = 1;

/** The exit code of a process that failed with `error`: EXIT_TEMPFAIL when retrying can help, else EXIT_FAILURE. */
export function exitCodeOf(error: TextshiftError): number {
  return error.retryable ? EXIT_TEMPFAIL : EXIT_FAILURE;
}
