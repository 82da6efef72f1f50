import { z } from 'zod';
import type {
  FeaturizeInput,
  MarkFailedInput,
  PrepareInput,
  ReportInput,
} from '#src/workflow/stage-io.js';

// The events the state machine sends each handler (stage-io.ts shapes). A malformed event fails the invocation
// with the stage name and the offending field, which the state machine's Catch then records in the manifest.
const key = z.string().min(1);

const schemas = {
  prepare: z.strictObject({ experimentKey: key, uploadId: key.optional(), runId: key.optional(), quick: z.boolean().optional() }),
  featurize: z.strictObject({ runId: key, shardKey: key }),
  report: z.strictObject({ runId: key }),
  markFailed: z.strictObject({
    runId: key,
    stage: key,
    error: z.object({ Error: z.string().optional(), Cause: z.string().optional() }),
  }),
};

function parse<T>(stage: keyof typeof schemas, event: unknown): T {
  const result = schemas[stage].safeParse(event);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(event)'}: ${i.message}`).join('; ');
    throw new Error(`invalid ${stage} event: ${problems}`);
  }
  return result.data as T;
}

/** Validates the Prepare event. */
export const parsePrepareInput = (event: unknown) => parse<PrepareInput>('prepare', event);
/** Validates the Featurize event (one shard). */
export const parseFeaturizeInput = (event: unknown) => parse<FeaturizeInput>('featurize', event);
/** Validates the Report event. */
export const parseReportInput = (event: unknown) => parse<ReportInput>('report', event);
/** Validates the MarkFailed event (a Catch's error object). */
export const parseMarkFailedInput = (event: unknown) => parse<MarkFailedInput>('markFailed', event);
