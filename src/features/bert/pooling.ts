import type { BertBatch } from './tokenizer.js';
import { POOLING_MODES, type PoolingMode } from '../../config/experiment.js';
import { InternalError, InvalidInputError } from '../../errors/index.js';

/** Sentence pooling over token vectors: masked mean, masked max, [CLS] (position 0) or each row's real [SEP]. */
export type Pooling = PoolingMode;

/** All pooling modes, for validation and CLI help; also the order of a shared pass's column blocks. */
export const POOLINGS: readonly Pooling[] = POOLING_MODES;

/** Parses a pooling name, naming the allowed ones on error. */
export function parsePooling(value: string): Pooling {
  if ((POOLINGS as readonly string[]).includes(value)) return value as Pooling;
  throw new InvalidInputError(`pooling must be one of ${POOLINGS.join(', ')}, got "${value}"`);
}

/**
 * Pools a batch's hidden states [batchSize × seqLength × dim] into each of `outputs` (one matrix per pooling, any
 * subset of the four), writing batch row r at output row rowIndex[r]. One walk over the tokens feeds mean and max
 * alike, so asking for every pooling costs little more than asking for one. Only positions whose attention mask is 1
 * take part, so padding never changes an embedding; `sep` is the last real position (the row's [SEP]), not the last
 * padded one.
 */
export function poolHiddenStates(
  hidden: Float32Array,
  batch: BertBatch,
  dim: number,
  outputs: Partial<Record<Pooling, Float32Array>>,
  rowIndex: readonly number[],
): void {
  const { batchSize, seqLength, attentionMask } = batch;
  if (hidden.length !== batchSize * seqLength * dim) {
    throw new InternalError(
      `hidden states have ${hidden.length} values, expected ${batchSize}×${seqLength}×${dim} = ${batchSize * seqLength * dim}`,
    );
  }
  const { mean, max, cls, sep } = outputs;
  const sum = new Float64Array(dim);
  const top = new Float64Array(dim);
  for (let r = 0; r < batchSize; r++) {
    const target = rowIndex[r]! * dim;
    const rowBase = r * seqLength;
    const isReal = (t: number): boolean => attentionMask[rowBase + t] !== 0n;
    const position = (t: number): Float32Array => hidden.subarray((rowBase + t) * dim, (rowBase + t + 1) * dim);
    cls?.set(position(0), target);
    if (sep) {
      let last = seqLength - 1;
      while (last > 0 && !isReal(last)) last--;
      sep.set(position(last), target);
    }
    if (!mean && !max) continue;
    sum.fill(0);
    top.fill(-Infinity);
    let count = 0;
    for (let t = 0; t < seqLength; t++) {
      if (!isReal(t)) continue;
      count++;
      const base = (rowBase + t) * dim;
      if (mean) for (let d = 0; d < dim; d++) sum[d]! += hidden[base + d]!;
      if (max) for (let d = 0; d < dim; d++) if (hidden[base + d]! > top[d]!) top[d] = hidden[base + d]!;
    }
    if (count === 0) throw new InternalError(`batch row ${r} has no real tokens (attention mask is all 0)`);
    for (let d = 0; d < dim; d++) {
      if (mean) mean[target + d] = sum[d]! / count;
      if (max) max[target + d] = top[d]!;
    }
  }
}
