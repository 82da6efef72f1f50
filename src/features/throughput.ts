/**
 * How fast each encoder featurizes, measured, and the shard size a run gets when its experiment sets none. Every
 * number was measured on the 2-core reference machine of docs/benchmarks.md's `npm run bench` table with `npm run bench`, on
 * the long texts of the default experiment (IMDB reviews, ~1,300 characters, ~300 tokens), so a shard sized from it
 * is sized for the slow case. A Lambda function with the featurize function's memory has more vCPUs than that
 * machine gives one encoder, so real shards finish sooner than planned, never later.
 */
import type { FeatureConfig } from '../config/experiment.js';
import { BERT_BASE_SHAPE, speedupOverBertBase, type EncoderShape } from './bert/shape.js';

/** Measured throughput of one encoder kind, and where it was measured. */
export interface EncoderThroughput {
  /** Texts per second (BoW, USE) or, for BERT-family encoders, tokens per second (a text costs up to `maxLength` tokens). */
  perSecond: number;
  unit: 'texts' | 'tokens';
  measured: string;
}

/** The measured throughput of each encoder kind. */
export const ENCODER_THROUGHPUT: Record<FeatureConfig['kind'], EncoderThroughput> = {
  bow: {
    perSecond: 51_000,
    unit: 'texts',
    measured: 'bench "BoW transform, 50k IMDB reviews": 50,000 reviews in 0.98 s, one thread',
  },
  use: {
    perSecond: 13,
    unit: 'texts',
    measured: 'bench "USE-lite": 13 IMDB reviews per CPU-second (80 SST-2 sentences per CPU-second)',
  },
  bert: {
    // Stated for bert-base (BERT_BASE_SHAPE); shardRows scales it to the family's model by arithmetic per token.
    // bench "BERT-family encoder": the MiniLM-sized model (6 layers, hidden 384) encodes 396 SST-2 sentences/s
    // (~25 tokens each, ~9,900 tokens/s) on 2 threads. bert-base (12 layers, hidden 768) does ~8x the work per token
    // (layers x hidden^2): ~1,240 tokens/s.
    perSecond: 1_240,
    unit: 'tokens',
    measured: 'bench "BERT-family encoder, MiniLM-sized": 396 SST-2 sentences/s on 2 threads, scaled by 8 to bert-base size',
  },
};

/** A shard takes at most this share of the featurize function's timeout at the measured throughput. */
export const SHARD_TIME_SHARE = 1 / 3;

/**
 * The largest shard the planner makes. Beyond it a shard's size is bounded by memory, not time: a BoW shard of
 * 10,000 IMDB reviews holds ~1.2 M non-zeros, and the texts and vectors of a shard are in memory at once.
 */
export const MAX_PLANNED_SHARD_ROWS = 10_000;

/** The featurize function's timeout a plan assumes when no deployment says otherwise (cdk.json's default). */
export const DEFAULT_FEATURIZE_TIMEOUT_SECONDS = 900;

/**
 * Rows per featurize shard of a family: the experiment's `shardSize` if it sets one, else as many texts as the
 * family's encoder featurizes in a third of the featurize function's timeout (BERT-family: every text counted at
 * `maxLength` tokens, at the speed of a model of `shape`, bert-base when unknown), at most MAX_PLANNED_SHARD_ROWS
 * and at least 1.
 */
export function shardRows(spec: FeatureConfig, featurizeTimeoutSeconds: number, shape: EncoderShape = BERT_BASE_SHAPE): number {
  if (spec.shardSize !== undefined) return spec.shardSize;
  const t = ENCODER_THROUGHPUT[spec.kind];
  const textsPerSecond =
    t.unit === 'texts' ? t.perSecond : spec.kind === 'bert' ? (t.perSecond * speedupOverBertBase(shape, spec.maxLength)) / spec.maxLength : t.perSecond;
  return Math.max(1, Math.min(MAX_PLANNED_SHARD_ROWS, Math.floor(featurizeTimeoutSeconds * SHARD_TIME_SHARE * textsPerSecond)));
}
