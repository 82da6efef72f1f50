// MarkFailed Lambda: a Catch's {runId, stage, error} -> markFailed() records it in the run manifest.
import { markFailed } from '#src/workflow/stages/mark-failed.js';
import { parseMarkFailedInput } from '../shared/events.js';
import { awsStageContext } from '../shared/stage-context.js';

/** Lambda entry point. */
export async function handler(event: unknown): Promise<Awaited<ReturnType<typeof markFailed>>> {
  const input = parseMarkFailedInput(event);
  return markFailed(awsStageContext(input.runId), input);
}
