// Prepare Lambda: the state machine's PrepareInput -> prepare() -> run id, shard plan, feature families.
import { DEPLOYMENT_ENV, missingEnv, readDeploymentEnv } from '#src/config/deployment-env.js';
import { prepare } from '#src/workflow/stages/prepare.js';
import type { PrepareOutput } from '#src/workflow/stage-io.js';
import { deploymentStageContext } from '#src/workflow/deployment-context.js';
import { parsePrepareInput } from '../shared/events.js';
import { classified } from '../shared/classified.js';

/** Lambda entry point; errors leave classified (TransientError or a permanent class). */
export const handler = classified(async (event: unknown): Promise<PrepareOutput> => {
  const input = parsePrepareInput(event);
  // The cost guard's settings and the featurize timeout shards are sized to: without them Prepare would run a run
  // nobody priced, so their absence fails the run.
  const { planDeployment } = readDeploymentEnv();
  if (!planDeployment) throw missingEnv(DEPLOYMENT_ENV.planDeployment, "the stack sets it on the Prepare function from cdk.json (planDeploymentOf)");
  return prepare(deploymentStageContext(input.runId ?? input.experimentKey), input, { deployment: planDeployment });
});
