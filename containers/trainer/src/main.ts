// The trainer container's entry: job parameters -> train() -> the feature family's result key on stdout.
// Also runs locally (`npx tsx containers/trainer/src/main.ts ...`) on the WASM backend, against any S3 endpoint.
import { S3Client } from '@aws-sdk/client-s3';
import { S3BlobStore } from '#src/store/s3-store.js';
import { train } from '#src/workflow/stages/train.js';
import { parseTrainerArgs } from './args.js';
import { assertGpu, loadTensorflowBackend } from './gpu.js';

try {
  const input = parseTrainerArgs(process.argv.slice(2), process.env);
  const bucket = process.env.BUCKET;
  if (!bucket) throw new Error('environment variable BUCKET is not set: it must name the data bucket');

  const backend = await loadTensorflowBackend();
  console.error(`trainer: TensorFlow.js backend "${backend.backend}"${backend.gpu ? ' on GPU' : ''}`);
  if (process.env.TEXTSHIFT_REQUIRE_GPU === '1') assertGpu(backend);

  // An endpoint override (an emulator) rarely resolves bucket subdomains, so address buckets by path there.
  const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  const store = new S3BlobStore({ bucket, client: new S3Client({ forcePathStyle: endpoint !== undefined }) });
  const output = await train({ store }, input);
  console.log(JSON.stringify(output));
} catch (err) {
  console.error(`trainer failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
