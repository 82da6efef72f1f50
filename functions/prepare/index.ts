// Prepare Lambda: the state machine's PrepareInput -> prepare() -> run id, shard plan, feature families.
import { readDeploymentEnv } from '#src/config/deployment-env.js';
import { prepare } from '#src/workflow/stages/prepare.js';
import type { PrepareOutput } from '#src/workflow/stage-io.js';
import { deploymentStageContext } from '#src/workflow/deployment-context.js';
import { parsePrepareInput } from '../shared/events.js';
import { classified } from '../shared/classified.js';

/** Lambda entry point; errors leave classified (TransientError or a permanent class). */
export const handler = classified(async (event: unknown): Promise<PrepareOutput> => {
  const input = parsePrepareInput(event);
  // Shards without an experiment-set size are sized to the featurize function's timeout, which the stack sets here.
  const { featurizeTimeoutSeconds } = readDeploymentEnv();
  return prepare(deploymentStageContext(input.runId ?? input.experimentKey), input, { featurizeTimeoutSeconds });
});
