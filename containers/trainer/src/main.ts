// The trainer container's entry: job parameters -> train() -> the feature family's result key on stdout.
// Also runs locally (`node --import tsx containers/trainer/src/main.ts ...`) on the WASM engine, against any store
// TEXTSHIFT_STORE_URL names (a folder, or S3 through any endpoint). The stage context is the same one the Lambda
// handlers build (on AWS: the bucket from env BUCKET), from src/ only: the image carries no handler code.
// Relative, not #src/: this folder has its own package.json, which scopes subpath imports.
import { registerEngine } from '../../../src/model/index.js';
import { TfjsMlp } from '../../../src/model/tfjs-mlp.js';
import { train } from '../../../src/workflow/stages/train.js';
import { deploymentStageContext } from '../../../src/workflow/deployment-context.js';
import { fencedContext } from '../../../src/workflow/fence.js';
import { asOnlyJob } from '../../../src/workflow/job-lease.js';
import { readDeploymentEnv } from '../../../src/config/deployment-env.js';
import { parseTrainerArgs } from './args.js';
import { assertGpu, loadTensorflowBinding } from './backend.js';
import { classifyError } from '../../../src/errors/classify.js';
import { exitCodeOf } from '../../../src/errors/exit-code.js';
import { redact } from '../../../src/errors/redact.js';

try {
  const env = readDeploymentEnv();
  const input = parseTrainerArgs(process.argv.slice(2), env);
  // The job writes the run its execution holds: fenced by the lease's token as it starts (a job of a superseded attempt
  // stops at its next checkpoint instead of writing beside the new holder). The execution's lease holds until the state
  // machine's timeout, so the job need not renew it.
  const { ctx, token } = await fencedContext(deploymentStageContext(input.runId), input.runId);

  const backend = await loadTensorflowBinding(env.tfBinding);
  if (env.requireGpu) assertGpu(backend);
  // With the native binding loaded, models train in TensorFlow.js on its backend (the GPU on a GPU instance).
  if (backend.backend === 'tensorflow') registerEngine('tfjs', (spec, seed) => new TfjsMlp(spec, seed), true);
  console.error(
    backend.binding
      ? `trainer: TensorFlow.js backend "${backend.backend}"${backend.gpu ? ' on a GPU' : ' on the CPU'}`
      : 'trainer: no native TensorFlow binding; training on the WebAssembly engine',
  );

  // One job per family: a duplicate job (a SubmitJob retried after it had in fact submitted) waits for the first, then
  // finds its result. Batch names the job in AWS_BATCH_JOB_ID; a trainer run by hand is its process.
  const job = process.env.AWS_BATCH_JOB_ID ?? `process-${process.pid}`;
  const lost = (message: string) => {
    console.error(`trainer: lost the job lease of ${input.feature}, stopping: ${message}`);
    process.exit(1);
  };
  // A run without a lease (none on AWS; a run id that does not exist) is trained as it is: there is no execution to fence.
  const output = token === undefined ? await train(ctx, input) : await asOnlyJob(ctx, { runId: input.runId, feature: input.feature, job, lost }, () => train(ctx, input));
  console.log(JSON.stringify(output));
} catch (err) {
  // The exit code carries the class across Batch: 75 (EX_TEMPFAIL) is retried by the job definition, 1 is not.
  const error = classifyError(err);
  console.error(`trainer failed: ${error.name}: ${redact(error.message)}`);
  process.exitCode = exitCodeOf(error);
}
