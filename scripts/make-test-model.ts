#!/usr/bin/env node
// Generates a random-weight BERT ONNX model folder for tests and benchmarks:
//   npx tsx scripts/make-test-model.ts --out .cache/models/tiny-bert [--preset tiny|minilm]
//     [--layers N --hidden N --heads N --intermediate N --seed N]
import { parseArgs } from 'node:util';
import { TEST_MODEL_PRESETS, TEST_MODEL_SEED, writeTestModel, type TestModelPreset } from './onnx/test-model.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    preset: { type: 'string', default: 'tiny' },
    layers: { type: 'string' },
    hidden: { type: 'string' },
    heads: { type: 'string' },
    intermediate: { type: 'string' },
    seed: { type: 'string' },
  },
});

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${raw}"`);
  return n;
}

if (!values.out) throw new Error('--out <folder> is required');
if (!(values.preset in TEST_MODEL_PRESETS)) {
  throw new Error(`--preset must be one of ${Object.keys(TEST_MODEL_PRESETS).join(', ')}, got "${values.preset}"`);
}
const preset = TEST_MODEL_PRESETS[values.preset as TestModelPreset];
const size = {
  layers: positiveInt('layers', values.layers, preset.layers),
  hidden: positiveInt('hidden', values.hidden, preset.hidden),
  heads: positiveInt('heads', values.heads, preset.heads),
  intermediate: positiveInt('intermediate', values.intermediate, preset.intermediate),
};
const seed = values.seed === undefined ? TEST_MODEL_SEED : Number(values.seed);
if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer, got "${values.seed}"`);
await writeTestModel(values.out, size, seed);
console.log(`wrote ${values.out} (${size.layers} layers, hidden ${size.hidden}, ${size.heads} heads, seed ${seed})`);
