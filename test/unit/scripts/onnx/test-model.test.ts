import { readFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTestModel } from '../../../../scripts/onnx/test-model.js';

const SIZE = { layers: 1, hidden: 16, heads: 2, intermediate: 32 };
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bert-model-'));
  await writeTestModel(join(dir, 'a'), SIZE, 7);
  await writeTestModel(join(dir, 'b'), SIZE, 7);
  await writeTestModel(join(dir, 'c'), SIZE, 8);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('scripts/make-test-model: random-weight BERT in the optimum layout', () => {
  it('writes vocab.txt, config.json and onnx/model.onnx, and nothing half-written', async () => {
    expect((await readdir(dir)).sort()).toEqual(['a', 'b', 'c']);
    expect((await readdir(join(dir, 'a'))).sort()).toEqual(['config.json', 'onnx', 'vocab.txt']);
    const vocab = (await readFile(join(dir, 'a', 'vocab.txt'), 'utf8')).split('\n');
    expect(vocab).toHaveLength(30523); // 30522 tokens + final newline
    expect(vocab[7592]).toBe('hello');
    const config = JSON.parse(await readFile(join(dir, 'a', 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({
      model_type: 'bert',
      vocab_size: 30522,
      hidden_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 32,
      max_position_embeddings: 512,
    });
  });

  it('is deterministic for a seed and differs across seeds', async () => {
    const model = (name: string) => readFile(join(dir, name, 'onnx', 'model.onnx'));
    expect((await model('a')).equals(await model('b'))).toBe(true);
    expect((await model('a')).equals(await model('c'))).toBe(false);
  });

  it('loads in ONNX Runtime with int64 [batch, sequence] inputs and a last_hidden_state output', async () => {
    const session = await ort.InferenceSession.create(join(dir, 'a', 'onnx', 'model.onnx'));
    expect([...session.inputNames].sort()).toEqual(['attention_mask', 'input_ids', 'token_type_ids']);
    expect(session.outputNames).toEqual(['last_hidden_state']);
    for (const [batch, seq] of [
      [1, 3],
      [4, 9],
    ] as const) {
      const zeros = new ort.Tensor('int64', new BigInt64Array(batch * seq), [batch, seq]);
      const ones = new ort.Tensor('int64', new BigInt64Array(batch * seq).fill(1n), [batch, seq]);
      const out = await session.run({ input_ids: ones, attention_mask: ones, token_type_ids: zeros });
      expect(out['last_hidden_state']!.dims).toEqual([batch, seq, 16]);
      expect(Array.from(out['last_hidden_state']!.data as Float32Array).every(Number.isFinite)).toBe(true);
    }
    await session.release();
  });
});
