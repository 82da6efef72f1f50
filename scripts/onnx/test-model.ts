/** Writes random-weight BERT model folders in the Hugging Face optimum layout (vocab.txt, config.json, onnx/model.onnx). */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BERT_BASE_UNCASED_VOCAB_SIZE, writeBertBaseUncasedVocabTxt } from '../../src/features/bert/vocab.js';
import { bertWeightShapes, type BertArchitecture, type BertWeights } from '../../src/models/bert-config.js';
import { buildBertOnnx } from '../../src/models/bert-onnx.js';
import type { Tensor } from '../../src/model/engine.js';
import { encodeSafetensors } from '../../src/model/safetensors.js';
import { MT19937 } from '../../src/random/mt19937.js';

/** Size of a generated test encoder. */
export interface TestModelSize {
  layers: number;
  hidden: number;
  heads: number;
  intermediate: number;
}

/** Named sizes: `tiny` for tests, `minilm` (all-MiniLM-L6 shape, 6×384) for benchmarks. */
export const TEST_MODEL_PRESETS = {
  tiny: { layers: 2, hidden: 32, heads: 4, intermediate: 64 },
  minilm: { layers: 6, hidden: 384, heads: 12, intermediate: 1536 },
} as const satisfies Record<string, TestModelSize>;

/** Preset name. */
export type TestModelPreset = keyof typeof TEST_MODEL_PRESETS;

/** Default weight seed. */
export const TEST_MODEL_SEED = 42;

/** Where presets are cached (gitignored). */
export const TEST_MODEL_CACHE = resolve('.cache/models');

/**
 * Writes a model folder at `out`: the real bert-base-uncased vocab.txt, a BERT config.json and onnx/model.onnx.
 * The folder is assembled beside `out` and renamed into place, so a crash never leaves a half-written model.
 */
export async function writeTestModel(out: string, size: TestModelSize, seed = TEST_MODEL_SEED): Promise<void> {
  const arch = testArchitecture(size);
  const target = resolve(out);
  const tmp = `${target}.partial-${randomBytes(4).toString('hex')}`;
  try {
    await mkdir(join(tmp, 'onnx'), { recursive: true });
    await writeBertBaseUncasedVocabTxt(join(tmp, 'vocab.txt'));
    await writeFile(join(tmp, 'config.json'), `${JSON.stringify(bertConfig(arch, seed), null, 2)}\n`);
    await writeFile(join(tmp, 'onnx', 'model.onnx'), buildBertOnnx(arch, randomBertWeights(arch, seed), 'textshift make-test-model'));
    await rm(target, { recursive: true, force: true });
    await mkdir(dirname(target), { recursive: true });
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** How a test checkpoint departs from a plain BertModel one. */
export interface TestCheckpointOptions {
  /** config.json fields to change or add. */
  config?: Record<string, unknown>;
  /** Prefix of the encoder's tensor names ("bert." as BertFor* heads save them). */
  prefix?: string;
  /** Tensors stored beside the encoder's (a head, a pooler). */
  extra?: Record<string, Tensor>;
  /** Changes the encoder weights before they are saved. */
  edit?: (weights: Map<string, Float32Array>) => void;
}

/**
 * Writes a Hugging Face checkpoint folder with random weights (config.json, model.safetensors, the real
 * bert-base-uncased vocab.txt), the input of `textshift models import`; returns the encoder weights it saved.
 */
export async function writeTestCheckpoint(dir: string, size: TestModelSize, seed = TEST_MODEL_SEED, options: TestCheckpointOptions = {}): Promise<BertWeights> {
  const arch = testArchitecture(size);
  const weights = new Map(randomBertWeights(arch, seed));
  options.edit?.(weights);
  const tensors = new Map<string, Tensor>();
  const shapes = bertWeightShapes(arch);
  for (const [name, data] of weights) tensors.set(`${options.prefix ?? ''}${name}`, { shape: shapes.get(name)!, data });
  for (const [name, tensor] of Object.entries(options.extra ?? {})) tensors.set(name, tensor);
  await mkdir(dir, { recursive: true });
  await writeBertBaseUncasedVocabTxt(join(dir, 'vocab.txt'));
  await writeFile(join(dir, 'config.json'), `${JSON.stringify({ ...bertConfig(arch, seed), ...options.config }, null, 2)}\n`);
  await writeFile(join(dir, 'model.safetensors'), encodeSafetensors(tensors));
  return weights;
}

/** The architecture of a test size, with the real vocabulary's size and BERT's positions, types and epsilon. */
function testArchitecture(size: TestModelSize): BertArchitecture {
  return {
    vocabSize: BERT_BASE_UNCASED_VOCAB_SIZE,
    hiddenSize: size.hidden,
    numLayers: size.layers,
    numHeads: size.heads,
    intermediateSize: size.intermediate,
    maxPositions: 512,
    typeVocabSize: 2,
    layerNormEps: 1e-12,
  };
}

/** Returns the folder of a preset model under .cache/models/, generating it first if it is not there. */
export async function ensureTestModel(preset: TestModelPreset, cacheDir = TEST_MODEL_CACHE): Promise<string> {
  const dir = join(cacheDir, `${preset}-bert-seed${TEST_MODEL_SEED}`);
  if (!existsSync(join(dir, 'onnx', 'model.onnx'))) await writeTestModel(dir, TEST_MODEL_PRESETS[preset]);
  return dir;
}

/**
 * Seeded random encoder weights in checkpoint layout, as BERT initialises them: N(0, 0.02²) (initializer_range), with
 * LayerNorm scales jittered around 1 so that layers are not all alike.
 */
export function randomBertWeights(arch: BertArchitecture, seed: number): BertWeights {
  const rng = MT19937.fromSeed(seed);
  // Standard normal by Box-Muller on the seeded generator.
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - rng.nextDouble())) * Math.cos(2 * Math.PI * rng.nextDouble());
  const weights = new Map<string, Float32Array>();
  for (const [name, shape] of bertWeightShapes(arch)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const scale = name.endsWith('LayerNorm.weight');
    for (let i = 0; i < data.length; i++) data[i] = scale ? 1 + 0.1 * normal() : 0.02 * normal();
    weights.set(name, data);
  }
  return weights;
}

/** A Hugging Face BertConfig for the architecture; the extra field records that the weights are random. */
function bertConfig(arch: BertArchitecture, seed: number): Record<string, unknown> {
  return {
    architectures: ['BertModel'],
    model_type: 'bert',
    vocab_size: arch.vocabSize,
    hidden_size: arch.hiddenSize,
    num_hidden_layers: arch.numLayers,
    num_attention_heads: arch.numHeads,
    intermediate_size: arch.intermediateSize,
    hidden_act: 'gelu',
    hidden_dropout_prob: 0.1,
    attention_probs_dropout_prob: 0.1,
    max_position_embeddings: arch.maxPositions,
    type_vocab_size: arch.typeVocabSize,
    initializer_range: 0.02,
    layer_norm_eps: arch.layerNormEps,
    pad_token_id: 0,
    position_embedding_type: 'absolute',
    textshift_test_model: { random_weights: true, seed },
  };
}
