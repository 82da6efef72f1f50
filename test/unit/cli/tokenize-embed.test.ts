import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_MODEL_PRESETS, writeTestModel } from '../../../scripts/onnx/test-model.js';
import { BertEncoder } from '../../../src/features/bert/encoder.js';
import { readNpyFile } from '../../../src/matrix/npy.js';

const run = promisify(execFile);
const cli = (...args: string[]) => run('npx', ['tsx', 'scripts/cli.ts', ...args], { encoding: 'utf8' });

let dir: string;
let model: string;
let texts: string;
const LINES = ['Hello world!', 'Café naïve', '', 'unaffable movie , really'];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bert-cli-'));
  model = join(dir, 'tiny-bert');
  await writeTestModel(model, TEST_MODEL_PRESETS.tiny);
  texts = join(dir, 'texts.txt');
  await writeFile(texts, `${LINES.join('\r\n')}\n`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('textshift tokenize / embed (CLI through scripts/cli.ts on a generated tiny BERT)', () => {
  it('tokenize prints one JSON id array per input line, truncated with --max-length', async () => {
    const { stdout } = await cli('tokenize', model, texts);
    expect(stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as number[])).toEqual([
      [101, 7592, 2088, 999, 102],
      [101, 7668, 15743, 102],
      [101, 102],
      [101, 14477, 20961, 3468, 3185, 1010, 2428, 102],
    ]);
    const short = await cli('tokenize', model, texts, '--max-length', '3');
    expect(short.stdout.trimEnd().split('\n')[0]).toBe('[101,7592,102]');
  });

  it('embed writes one float32 row per line, equal to the encoder API', async () => {
    const out = join(dir, 'emb.npy');
    const { stdout } = await cli('embed', model, texts, '--pooling', 'max', '--batch-size', '2', '--threads', '1', '--out', out);
    expect(stdout).toMatch(/wrote .*emb\.npy: 4 × 32 float32 \(max pooling/);
    const written = await readNpyFile(out);
    expect([written.rows, written.cols]).toEqual([4, 32]);
    const encoder = await BertEncoder.load(model, { threads: 1 });
    const expected = (await encoder.encode(LINES, { poolings: ['max'] })).embeddings.max;
    await encoder.close();
    for (let i = 0; i < expected.length; i++) {
      expect(Math.abs(written.data[i]! - expected[i]!)).toBeLessThan(1e-5);
    }
  });

  it('fails with a message naming what is wrong', async () => {
    const x = join(dir, 'x.npy');
    await Promise.all([
      expect(cli('embed', model, texts, '--pooling', 'avg', '--out', x)).rejects.toMatchObject({
        stderr: expect.stringMatching(/argument 'avg' is invalid\. Allowed choices are mean, max, cls, sep/),
      }),
      expect(cli('embed', dir, texts, '--pooling', 'mean', '--out', x)).rejects.toMatchObject({
        stderr: expect.stringMatching(/config\.json: not found/),
      }),
      expect(cli('tokenize', model, join(dir, 'missing.txt'))).rejects.toMatchObject({
        stderr: expect.stringMatching(/missing\.txt/),
      }),
    ]);
  });
});
