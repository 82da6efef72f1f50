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
}

/** Lambda architecture of the featurize function; onnxruntime-node ships a linux/arm64 binary, so Graviton. */
export const FEATURIZE_ARCHITECTURE = lambda.Architecture.ARM_64;

/**
 * The featurize Lambda: one shard per invocation, BoW vectors or transformer sentence embeddings.
 *
 * Packaging choice: a zip bundle, not a container image. onnxruntime-node is a native module that
 * esbuild cannot bundle, and its npm package carries binaries for every OS (~290 MB, over Lambda's
 * 250 MB unzipped limit), so it is left external and copied in with only the linux/arm64 binary
 * (~26 MB; `libonnxruntime.so` needs glibc 2.28, Lambda's Node.js 22 runtime on Amazon Linux 2023 has 2.34).
 * The bundle stays around 30 MB unzipped, builds with the local esbuild (no Docker at synth or deploy),
 * and cold-starts in well under a second of init; the model itself is not in the bundle but read from
 * `models/<name>/` in S3 into /tmp on the first invocation of each container (a bert-base ONNX file is
 * ~440 MB: several seconds per cold container, paid once per container, not per shard). A container
 * image would carry the model too but needs Docker to build on every deploy and cold-starts slower
 * on first pull.
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
      architecture: FEATURIZE_ARCHITECTURE,
      // Room for a downloaded model folder (bert-base ONNX ~440 MB) next to the runtime's own use of /tmp.
      ephemeralStorageMb: 4096,
      copiedPackages: [
        { name: 'onnxruntime-node', paths: ['dist', 'bin/napi-v6/linux/arm64'] },
        { name: 'onnxruntime-common', paths: ['dist'] },
      ],
    });
  }
}
