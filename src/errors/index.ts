/**
 * textshift's error classes. Every error a stage raises on purpose is a TextshiftError, and each says whether trying
 * again can help (`retryable`): transient causes (throttling, timeouts, 5xx answers, a dropped connection) can;
 * permanent ones (bad data, an invalid experiment or event, a missing input, a bug) cannot. The state machine retries
 * only what is retryable: errors leave a Lambda under their class's `name`, and RETRYABLE_ERROR_NAMES lists every
 * name a retry policy matches.
 */

/** The base of every textshift error: a name the state machine can match and a retry classification. */
export abstract class TextshiftError extends Error {
  abstract readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A cause that may go away by itself (throttling, a timeout, a 5xx answer, a dropped connection): retry it. */
export class TransientError extends TextshiftError {
  readonly retryable = true;
}

/** Something the input must change for (bad data, an invalid experiment or event, a missing input): never retried. */
export abstract class PermanentError extends TextshiftError {
  readonly retryable = false;
}

/** An experiment file, a deployment setting or another configuration value that is not valid. */
export class ConfigError extends PermanentError {}

/** A stage was called with input that cannot be right (an invalid event, a key of another run). */
export class InvalidInputError extends PermanentError {}

/** An input the stage needs does not exist (a dataset file, a model folder, an earlier stage's output). */
export class MissingInputError extends PermanentError {}

/** An error nobody classified (a bug, an unexpected library failure): retrying runs the same code on the same input. */
export class InternalError extends PermanentError {}

/** Error names the state machine's retry policies match (ours and the AWS services' transient ones). */
export const RETRYABLE_ERROR_NAMES = ['TransientError'] as const;
