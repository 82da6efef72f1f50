/**
 * textshift's error classes. Every error a stage raises on purpose is a TextshiftError, and each says whether trying
 * again can help (`retryable`): transient causes (throttling, timeouts, 5xx answers, a dropped connection) can;
 * permanent ones (bad data, an invalid experiment or event, a missing input, a bug) cannot. The state machine retries
 * only what is retryable: errors leave a Lambda under their class's `name`, and RETRYABLE_ERROR_NAMES lists every
 * name of ours a retry policy matches. Errors thrown by libraries and services are classified by `classifyError`
 * (classify.ts).
 */

/** The base of every textshift error: a name the state machine can match and a retry classification. */
export abstract class TextshiftError extends Error {
  abstract readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A cause that may go away by itself (throttling, a timeout, a 5xx answer, a dropped connection): retry it. Its
 * subclasses keep the name `TransientError`, the one name the retry policies match.
 */
export class TransientError extends TextshiftError {
  readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientError';
  }
}

/** Something the input must change for (bad data, an invalid experiment or event, a missing input): never retried. */
export abstract class PermanentError extends TextshiftError {
  readonly retryable = false;
}

/** An experiment file, a deployment or installation setting, or another configuration value that is not valid. */
export class ConfigError extends PermanentError {}

/** A stage or function was called with input that cannot be right (an invalid event, a key of another run, a bad argument). */
export class InvalidInputError extends PermanentError {}

/** Stored content that breaks its format or contradicts itself: a dataset row, a cache file, a model file, a checkpoint. */
export class InvalidDataError extends PermanentError {}

/** An input the stage needs does not exist (a dataset file, a model folder, an earlier stage's output). */
export class MissingInputError extends PermanentError {}

/**
 * A run the deployment's cost limits refuse (Prepare's cost guard): its planned cost is above its limit, or it asks
 * for a budget above the deployment's ceiling. Trying again costs the same; the budget or the run must change.
 */
export class BudgetExceededError extends PermanentError {}

/** An error nobody classified (a bug, an unexpected library failure): retrying runs the same code on the same input. */
export class InternalError extends PermanentError {}

/**
 * Error names of ours that the state machine's retry policies match. The AWS services' own transient errors
 * (`Lambda.ServiceException` and the like) are matched beside them where each task is defined.
 */
export const RETRYABLE_ERROR_NAMES = ['TransientError'] as const;

/** Transient Lambda service errors as Step Functions names them (not errors thrown by our code): safe to retry. */
export const LAMBDA_TRANSIENT_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'Lambda.ClientExecutionTimeoutException',
] as const;
/** Transient Batch API errors while submitting or polling a job (a failed job is States.TaskFailed). */
export const BATCH_TRANSIENT_ERRORS = ['Batch.ServerException', 'Batch.AWSBatchException'] as const;
/** Transient Step Functions API errors when the intake starts the named run. */
export const SFN_TRANSIENT_ERRORS = ['StepFunctions.SdkClientException', 'StepFunctions.AWSStepFunctionsException'] as const;

/** Step Functions' names for the AWS services' own transient failures of a task, which the state machine retries too. */
export const AWS_TRANSIENT_ERROR_NAMES = [...LAMBDA_TRANSIENT_ERRORS, ...BATCH_TRANSIENT_ERRORS] as const;

/** Whether an error name (as a Lambda or Step Functions reports it, or as it crossed a thread) names a retryable failure. */
export function isRetryableName(name: string | undefined): boolean {
  return ([...RETRYABLE_ERROR_NAMES, ...AWS_TRANSIENT_ERROR_NAMES] as readonly (string | undefined)[]).includes(name);
}
