// MarkFailed Lambda: a Catch's {runId, stage, error} -> markFailed() records it in the run manifest.
import { markFailed } from '#src/workflow/stages/mark-failed.js';
import { parseMarkFailedInput } from '../shared/events.js';
import { stageContext } from '../shared/stage-context.js';

/** Lambda entry point. */
export async function handler(event: unknown): Promise<void> {
  await markFailed(stageContext(), parseMarkFailedInput(event));
}
