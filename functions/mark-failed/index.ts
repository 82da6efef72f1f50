// MarkFailed Lambda: a Catch's {runId, stage, error} -> markFailed() records it in the run manifest, then the
// invocation fails with RunFailed so the execution stops *here*. A redrive of the execution re-enters this task
// with a larger redrive count: it then clears the failure and returns, and the state machine retries the stage.
import { markFailed, markResumed, RunFailedError } from '#src/workflow/stages/mark-failed.js';
import { deploymentStageContext } from '#src/workflow/deployment-context.js';
import { parseMarkFailedInput } from '../shared/events.js';
import { classified } from '../shared/classified.js';

/** Lambda entry point; RunFailed leaves as it is, any other error classified (e.g. a throttled manifest write). */
export const handler = classified(async (event: unknown): Promise<Awaited<ReturnType<typeof markResumed>>> => {
  const input = parseMarkFailedInput(event);
  const ctx = deploymentStageContext(input.runId);
  if ((input.redriveCount ?? 0) > (input.failedAtRedrive ?? 0)) return markResumed(ctx, input);
  throw new RunFailedError(await markFailed(ctx, input));
});
