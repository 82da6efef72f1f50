/** Pool task handler for benchUse: embeds a slice of texts with this worker's encoder (loaded once per worker). */
import type { TaskHandler } from '../src/workflow/pool.js';
import { createUseEncoder, type UseEncoder } from '../src/features/use/encoder.js';

/** Texts one worker embeds. */
export interface BenchTaskInput {
  texts: string[];
}

/** What came back: the vectors stay in the worker, as featurize keeps them in its cache entry. */
export interface BenchTaskOutput {
  backend: string;
  tokens: number;
  rows: number;
}

let encoder: Promise<UseEncoder> | undefined;

const embedSlice: TaskHandler<BenchTaskInput, BenchTaskOutput> = async ({ texts }) => {
  encoder ??= createUseEncoder();
  const enc = await encoder;
  const vectors = await enc.embed(texts);
  return { backend: enc.backend, tokens: enc.countTokens(texts), rows: vectors.length / enc.dim };
};

export default embedSlice;
