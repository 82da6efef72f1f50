import { parseArgs } from 'node:util';
import type { DeploymentEnv } from '../../../src/config/deployment-env.js';
import type { TrainInput } from '../../../src/workflow/stage-io.js';
import { InvalidInputError } from '../../../src/errors/index.js';

export const USAGE =
  'usage: main.ts --run-id <runId> --feature <feature>   (or env RUN_ID and FEATURE); env BUCKET names the data bucket,\n' +
  '       or TEXTSHIFT_STORE_URL another store (file:///dir, s3://bucket/prefix; data root TEXTSHIFT_DATA_URL, default <store>/datasets)';

/** Reads the job's run id and feature family from the command line (Batch job parameters) or the environment. */
export function parseTrainerArgs(argv: string[], env: Pick<DeploymentEnv, 'runId' | 'feature'>): TrainInput {
  const { values } = parseArgs({
    args: argv,
    options: { 'run-id': { type: 'string' }, feature: { type: 'string' } },
    strict: true,
  });
  const runId = values['run-id'] ?? env.runId;
  const feature = values.feature ?? env.feature;
  // An unsubstituted Batch placeholder means the job was submitted without parameters.
  for (const [name, value] of [['--run-id', runId], ['--feature', feature]] as const) {
    if (!value || value.startsWith('Ref::')) throw new InvalidInputError(`missing ${name} (got ${JSON.stringify(value)})\n${USAGE}`);
  }
  return { runId: runId!, feature: feature! };
}
