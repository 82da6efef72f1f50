import type { BertBatch } from './tokenizer.js';
import { InternalError, InvalidInputError } from '../../errors/index.js';

/** Sentence pooling over token vectors: masked mean, masked max, [CLS] (position 0) or each row's real [SEP]. */
export type Pooling = 'mean' | 'max' | 'cls' | 'sep';

/** All pooling modes, for validation and CLI help. */
export const POOLINGS: readonly Pooling[] = ['mean', 'max', 'cls', 'sep'];

/** Parses a pooling name, naming the allowed ones on error. */
export function parsePooling(value: string): Pooling {
  if ((POOLINGS as readonly string[]).includes(value)) return value as Pooling;
  throw new InvalidInputError(`pooling must be one of ${POOLINGS.join(', ')}, got "${value}"`);
}

/**
 * Pools a batch's hidden states [batchSize × seqLength × dim] into `out`, writing batch row r at output row
 * rowIndex[r]. Only positions whose attention mask is 1 take part, so padding never changes an embedding; `sep` is
 * the last real position (the row's [SEP]), not the last padded one.
 */
export function poolHiddenStates(
  hidden: Float32Array,
  batch: BertBatch,
  dim: number,
  pooling: Pooling,
  out: Float32Array,
  rowIndex: readonly number[],
): void {
  const { batchSize, seqLength, attentionMask } = batch;
  if (hidden.length !== batchSize * seqLength * dim) {
    throw new InternalError(
      `hidden states have ${hidden.length} values, expected ${batchSize}×${seqLength}×${dim} = ${batchSize * seqLength * dim}`,
    );
  }
  const acc = new Float64Array(dim);
  for (let r = 0; r < batchSize; r++) {
    const target = rowIndex[r]! * dim;
    const rowBase = r * seqLength;
    const isReal = (t: number): boolean => attentionMask[rowBase + t] !== 0n;
    const copyPosition = (t: number): void => {
      out.set(hidden.subarray((rowBase + t) * dim, (rowBase + t + 1) * dim), target);
    };
    if (pooling === 'cls') {
      copyPosition(0);
    } else if (pooling === 'sep') {
      let last = seqLength - 1;
      while (last > 0 && !isReal(last)) last--;
      copyPosition(last);
    } else {
      acc.fill(pooling === 'max' ? -Infinity : 0);
      let count = 0;
      for (let t = 0; t < seqLength; t++) {
        if (!isReal(t)) continue;
        count++;
        const base = (rowBase + t) * dim;
        if (pooling === 'max') {
          for (let d = 0; d < dim; d++) if (hidden[base + d]! > acc[d]!) acc[d] = hidden[base + d]!;
        } else {
          for (let d = 0; d < dim; d++) acc[d]! += hidden[base + d]!;
        }
      }
      if (count === 0) throw new InternalError(`batch row ${r} has no real tokens (attention mask is all 0)`);
      for (let d = 0; d < dim; d++) out[target + d] = pooling === 'max' ? acc[d]! : acc[d]! / count;
    }
  }
}
