import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTestCheckpoint } from '../../../scripts/onnx/test-model.js';
import { FeatureSpec, type FeatureConfig } from '../../../src/config/experiment.js';
import { BertEncoder } from '../../../src/features/bert/encoder.js';
import { denseEncoderFactory } from '../../../src/features/encoders.js';
import { importModel, type ImportResult } from '../../../src/models/import.js';
import { readModelRecord } from '../../../src/models/model-record.js';
import { countOnnxOps } from '../../../src/models/onnx-proto.js';
import { INT8_MAX, parseQuantization, quantizeLinearWeight } from '../../../src/models/quantize.js';
import { MT19937 } from '../../../src/random/mt19937.js';
import { storeFromUrl } from '../../../src/store/locations.js';

describe('quantizeLinearWeight', () => {
  // W [out 5 × in 7], columns of very different ranges, one all zero.
  const out = 5;
  const inSize = 7;
  const rng = MT19937.fromSeed(11);
  const weight = Float32Array.from({ length: out * inSize }, (_, k) => {
    const o = Math.floor(k / inSize);
    return o === 3 ? 0 : (rng.nextDouble() - 0.5) * 10 ** (o - 2);
  });
  const { values, scales } = quantizeLinearWeight(weight, out, inSize);

  it('gives each output column the scale max|W[o, :]| / 127, and 1 to an all-zero column', () => {
    for (let o = 0; o < out; o++) {
      const max = Math.max(...weight.subarray(o * inSize, (o + 1) * inSize).map(Math.abs));
      expect(scales[o]).toBe(o === 3 ? 1 : Math.fround(max / INT8_MAX));
    }
  });

  it('stores Wᵀ [in × out] as int8 in [-127, 127] that round-trips within half a step, the largest |w| at ±127', () => {
    expect(values).toHaveLength(out * inSize);
    for (let o = 0; o < out; o++) {
      const column = Array.from({ length: inSize }, (_, i) => values[i * out + o]!);
      expect(Math.max(...column.map(Math.abs))).toBe(o === 3 ? 0 : INT8_MAX);
      for (let i = 0; i < inSize; i++) {
        const w = weight[o * inSize + i]!;
        expect(Math.abs(values[i * out + o]! * scales[o]! - w)).toBeLessThanOrEqual(scales[o]! / 2 + Math.abs(w) * 1e-6);
      }
    }
  });

  it('refuses a weight of the wrong size, and a quantization it does not write', () => {
    expect(() => quantizeLinearWeight(new Float32Array(6), 2, 4)).toThrow('weight has 6 values, expected 2 × 4');
    expect(parseQuantization('int8')).toBe('int8');
    expect(() => parseQuantization('fp16')).toThrow('--quantize must be int8, got "fp16"');
  });
});

describe('models import --quantize int8 (tiny random BERT)', () => {
  const SIZE = { layers: 2, hidden: 32, heads: 4, intermediate: 64 };
  const TEXTS = ['Hello world!', 'Café naïve — a film that never quite works.', 'no'];
  let dir: string;
  let fp32: ImportResult;
  let int8: ImportResult;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'models-quantize-'));
    await writeTestCheckpoint(join(dir, 'ckpt'), SIZE, 9);
    fp32 = await importModel({ folder: join(dir, 'ckpt'), name: 'tiny', out: join(dir, 'out') });
    int8 = await importModel({ folder: join(dir, 'ckpt'), name: 'tiny-int8', out: join(dir, 'out'), quantize: 'int8' });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('records the quantization and its check against the float32 reference, within the int8 bounds', async () => {
    const record = await readModelRecord(int8.dir);
    expect(record.quantization).toBe('int8');
    expect(record.verification).toMatchObject({ tolerance: 1, minCosineBound: 0.95, sequences: 3 });
    expect(record.verification.minCosine).toBeGreaterThanOrEqual(0.95);
    expect(record.verification.maxAbsDiff).toBeGreaterThan(1e-4);
    expect(record.verification.maxAbsDiff).toBeLessThanOrEqual(1);
    expect((await readModelRecord(fp32.dir)).quantization).toBeUndefined();
  });

  it('writes every Linear as DynamicQuantizeLinear → MatMulInteger (int8 weights), which ONNX Runtime fuses', async () => {
    const written = countOnnxOps(await readFile(join(int8.dir, 'onnx', 'model.onnx')));
    const linears = 6 * SIZE.layers;
    expect(written.get('DynamicQuantizeLinear')).toBe(linears);
    expect(written.get('MatMulInteger')).toBe(linears);
    // The float MatMuls left are attention's two per layer (scores, context).
    expect(written.get('MatMul')).toBe(2 * SIZE.layers);

    const optimizedPath = join(dir, 'optimized.onnx');
    const session = await ort.InferenceSession.create(join(int8.dir, 'onnx', 'model.onnx'), { graphOptimizationLevel: 'all', optimizedModelFilePath: optimizedPath });
    await session.release();
    const optimized = countOnnxOps(await readFile(optimizedPath));
    expect(optimized.get('MatMulInteger')).toBeUndefined();
    expect((optimized.get('DynamicQuantizeMatMul') ?? 0) + (optimized.get('MatMulIntegerToFloat') ?? 0)).toBe(linears);
  });

  it('embeds close to the float32 model (cosine > 0.99 per text)', async () => {
    const embed = async (modelDir: string) => {
      const encoder = await BertEncoder.load(modelDir, { threads: 1 });
      try {
        return (await encoder.encode(TEXTS, { poolings: ['mean'] })).embeddings.mean;
      } finally {
        await encoder.close();
      }
    };
    const [a, b] = [await embed(fp32.dir), await embed(int8.dir)];
    for (let row = 0; row < TEXTS.length; row++) {
      const [u, v] = [a.subarray(row * 32, (row + 1) * 32), b.subarray(row * 32, (row + 1) * 32)];
      const dot = u.reduce((s, x, i) => s + x * v[i]!, 0);
      const cosine = dot / Math.sqrt(u.reduce((s, x) => s + x * x, 0) * v.reduce((s, x) => s + x * x, 0));
      expect(cosine).toBeGreaterThan(0.99);
    }
  });

  it('gives the int8 model its own encoder identity (feature cache key)', async () => {
    const bert = await denseEncoderFactory('bert');
    const store = storeFromUrl(join(dir, 'out'));
    const identity = (model: string) => bert.identity(FeatureSpec.parse({ kind: 'bert', model, pooling: 'mean', maxLength: 64 }) as FeatureConfig, store);
    const [a, b] = [await identity('tiny'), await identity('tiny-int8')];
    expect(a).toMatch(/^bert-poolings:[0-9a-f]{16}:64$/);
    expect(b).toMatch(/^bert-poolings:[0-9a-f]{16}:64$/);
    expect(b).not.toBe(a);
  });
});
