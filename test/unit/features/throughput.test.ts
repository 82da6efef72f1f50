import { describe, expect, it } from 'vitest';
import { FeatureSpec, type FeatureConfig } from '../../../src/config/experiment.js';
import { ENCODER_THROUGHPUT, MAX_PLANNED_SHARD_ROWS, shardRows } from '../../../src/features/throughput.js';

const spec = (raw: Record<string, unknown>) => FeatureSpec.parse(raw) as FeatureConfig;

describe('shard size when the experiment sets none: a third of the featurize timeout at the encoder\'s measured speed', () => {
  it('USE-lite: 13 IMDB reviews/s x 300 s = 3,900 texts for the 900 s timeout, 13 x 10 s = 130 for a 30 s one', () => {
    expect(shardRows(spec({ kind: 'use' }), 900)).toBe(3900);
    expect(shardRows(spec({ kind: 'use' }), 30)).toBe(130);
  });

  it('BERT-family: every text counted at maxLength tokens, 1,240 tokens/s', () => {
    // 300 s x 1,240 tokens/s / 512 tokens = 726.5 -> 726; / 128 tokens = 2,906.25 -> 2,906
    expect(shardRows(spec({ kind: 'bert', model: 'bert-base-uncased' }), 900)).toBe(726);
    expect(shardRows(spec({ kind: 'bert', model: 'bert-base-uncased', maxLength: 128 }), 900)).toBe(2906);
  });

  it("BERT-family: a smaller model's shard holds proportionally more texts (arithmetic per token)", () => {
    // MiniLM-L6 (6 layers, hidden 384, feed-forward 1536) at 512 tokens: 2·6·(4·384² + 2·384·1536 + 2·512·384) =
    // 25,952,256 FLOPs a token against bert-base's 188,743,680: 7.2727× the tokens/s -> 300 × 1,240 × 7.2727 / 512 = 5,284
    const minilm = { hidden: 384, layers: 6, intermediate: 1536 };
    expect(shardRows(spec({ kind: 'bert', model: 'all-minilm-l6-v2' }), 900, minilm)).toBe(5284);
  });

  it('BoW would fit millions of texts in the time: memory bounds it at MAX_PLANNED_SHARD_ROWS instead', () => {
    expect(ENCODER_THROUGHPUT.bow.perSecond * 300).toBeGreaterThan(MAX_PLANNED_SHARD_ROWS);
    expect(shardRows(spec({ kind: 'bow', fitOn: { dataset: 'a', split: 'train' } }), 900)).toBe(MAX_PLANNED_SHARD_ROWS);
  });

  it('a shard takes at least one text, and an experiment\'s own shardSize wins', () => {
    expect(shardRows(spec({ kind: 'bert', model: 'm' }), 1)).toBe(1);
    expect(shardRows(spec({ kind: 'use', shardSize: 500 }), 900)).toBe(500);
  });

  it('every constant says where it was measured', () => {
    for (const t of Object.values(ENCODER_THROUGHPUT)) expect(t.measured).toMatch(/^bench "/);
  });
});
