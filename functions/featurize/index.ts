// Featurize Lambda: one shard of one run -> featurize() -> the shard's cache key.
import { featurize } from '#src/workflow/stages/featurize.js';
import type { FeaturizeOutput } from '#src/workflow/stage-io.js';
import { deploymentStageContext } from '#src/workflow/deployment-context.js';
import { parseFeaturizeInput } from '../shared/events.js';
import { classified } from '../shared/classified.js';

/** Lambda entry point; errors leave classified (TransientError or a permanent class). */
export const handler = classified(async (event: unknown): Promise<FeaturizeOutput> => {
  const input = parseFeaturizeInput(event);
  return featurize(deploymentStageContext(input.runId), input);
});
