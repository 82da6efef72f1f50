import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_MODEL_PRESETS, writeTestModel } from '../../../scripts/onnx/test-model.js';
import { benchEncoder, readSst2Sentences } from '../../../bench/bert-encoder.js';

// The benchmark's plumbing only; its speed numbers belong to `npm run bench`, never to a test.
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bert-bench-'));
  await writeTestModel(join(dir, 'tiny'), TEST_MODEL_PRESETS.tiny);
  await writeFile(join(dir, 'train.tsv'), 'a fine film\t1\nno\t0\nwhat \'s next ?\t1\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('encoder benchmark plumbing', () => {
  it('reads SST-2 sentences and names the line of a malformed one', async () => {
    expect(await readSst2Sentences(join(dir, 'train.tsv'), 2)).toEqual(['a fine film', 'no']);
    await expect(readSst2Sentences(join(dir, 'train.tsv'), 4)).rejects.toThrow(/has 3 lines, the benchmark needs 4/);
    await writeFile(join(dir, 'bad.tsv'), 'ok\t1\nno label here\n');
    await expect(readSst2Sentences(join(dir, 'bad.tsv'), 2)).rejects.toThrow(/bad\.tsv:2: expected "sentence<TAB>label"/);
  });

  it('measures every cell of the grid and tabulates it', async () => {
    const texts = await readSst2Sentences(join(dir, 'train.tsv'), 3);
    const rows = await benchEncoder({
      models: [{ name: 'tiny', dir: join(dir, 'tiny') }],
      texts,
      batchSizes: [1, 2],
      threads: [1],
      bucketing: [false, true],
    });
    expect(rows.map((r) => [r.batchSize, r.bucketing])).toEqual([
      [1, false],
      [1, true],
      [2, false],
      [2, true],
    ]);
    for (const r of rows) {
      expect(r.texts).toBe(3);
      expect(r.textsPerSecond).toBeGreaterThan(0);
      expect(r.paddingOverhead).toBeGreaterThanOrEqual(1);
    }
    expect(rows[0]!.paddingOverhead).toBe(1); // batch size 1 never pads
  });
});
