import { z } from 'zod';
import { isShardOf } from '#src/run/keys.js';
import { validateKey } from '#src/store/blob-store.js';
import type { FeaturizeInput, MarkFailedInput, PrepareInput, ReportInput } from '#src/workflow/stage-io.js';
import { InvalidInputError } from '#src/errors/index.js';

// The events the state machine sends each handler (stage-io.ts shapes). A malformed event fails the invocation
// with the stage name and the offending field, which the state machine's Catch then records in the manifest.

/** An object key by the BlobStore's rules (no empty, "." or ".." segments, safe characters only). */
const key = z.string().superRefine((value, ctx) => {
  try {
    validateKey(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});
/** A run id is one key segment: it names the folder `runs/<runId>/`. */
const runId = z.string().superRefine((value, ctx) => {
  if (value.includes('/') || value === '.' || value === '..' || !/^[A-Za-z0-9._=+@-]{1,200}$/.test(value)) {
    ctx.addIssue({ code: 'custom', message: `invalid run id "${value}": expected 1-200 letters, digits or . _ = + @ - (one key segment)` });
  }
});
const count = z.number().int().min(0);
/** A Step Functions execution ARN (`$$.Execution.Id`). */
const executionArn = z.string().regex(/^arn:[\w-]+:states:[\w-]+:\d{12}:execution:[^:]+:[^:]+$/, 'expected a Step Functions execution ARN');

const schemas = {
  // The state machine's PrepareInput, and the execution running the run ($$.Execution.Id): Prepare takes the run's
  // lease for it.
  prepare: z.strictObject({
    prepareInput: z.strictObject({
      experimentKey: key,
      uploadId: z.string().min(1).optional(),
      // The upload event's version-id; empty when the bucket keeps no versions (then Prepare pins what it reads).
      experimentVersion: z.string().max(1024).optional(),
      runId: runId.optional(),
      quick: z.boolean().optional(),
    }),
    execution: executionArn,
  }).transform(({ prepareInput, execution }) => ({ ...prepareInput, execution })),
  featurize: z.strictObject({ runId, shardKey: key }).superRefine((e, ctx) => {
    if (!isShardOf(e.shardKey, e.runId)) {
      ctx.addIssue({ code: 'custom', path: ['shardKey'], message: `"${e.shardKey}" is not a shard of run "${e.runId}" (expected runs/${e.runId}/shards/...)` });
    }
  }),
  report: z.strictObject({ runId, executionArn: executionArn.optional() }),
  markFailed: z.strictObject({
    runId,
    stage: z.string().min(1),
    error: z.object({ Error: z.string().optional(), Cause: z.string().optional() }),
    redriveCount: count.optional(),
    failedAtRedrive: count.optional(),
    // The execution whose stage failed: only the run's holder records the failure.
    execution: executionArn,
  }),
};

function parse<T>(stage: keyof typeof schemas, event: unknown): T {
  const result = schemas[stage].safeParse(event);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(event)'}: ${i.message}`).join('; ');
    throw new InvalidInputError(`invalid ${stage} event: ${problems}`);
  }
  return result.data as T;
}

/** Validates the Prepare event. */
export const parsePrepareInput = (event: unknown) => parse<PrepareInput>('prepare', event);
/** Validates the Featurize event (one shard of the named run). */
export const parseFeaturizeInput = (event: unknown) => parse<FeaturizeInput>('featurize', event);
/** Validates the Report event (the run, and the execution whose billed usage the cost report uses). */
export const parseReportInput = (event: unknown) => parse<ReportEvent>('report', event);
/** Validates the MarkFailed event (a Catch's error object, and the redrive counts that tell a redrive apart). */
export const parseMarkFailedInput = (event: unknown) => parse<MarkFailedEvent>('markFailed', event);

/** The Report task's payload: the stage input plus the execution ARN (`$$.Execution.Id`) on AWS. */
export interface ReportEvent extends ReportInput {
  executionArn?: string;
}

/**
 * The MarkFailed task's payload. `failedAtRedrive` is the execution's redrive count when the stage failed and
 * `redriveCount` its count now: a larger count now means a redrive re-entered MarkFailed to resume the stage.
 */
export interface MarkFailedEvent extends MarkFailedInput {
  redriveCount?: number;
  failedAtRedrive?: number;
}
