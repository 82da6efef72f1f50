/**
 * The Hugging Face config.json of a BERT checkpoint, read into the few numbers that shape the encoder graph. Only
 * what the ONNX writer and the reference forward pass implement is accepted: model_type "bert", absolute position
 * embeddings and exact (erf) GELU. Anything else is refused by name, because a graph built for BERT from another
 * architecture's weights would load and run, and give wrong vectors without a word.
 */
import { readFile } from 'node:fs/promises';
import { InvalidDataError, MissingInputError } from '../errors/index.js';

/** The BERT config.json fields that shape the graph. */
export interface BertArchitecture {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  typeVocabSize: number;
  layerNormEps: number;
}

/** A config.json that passed the checks, with its architecture and what it calls the model. */
export interface BertConfig {
  arch: BertArchitecture;
  /** `architectures[0]` when listed (BertModel, BertForSequenceClassification, ...), else "BertModel". */
  architecture: string;
}

/** Reads and checks `path` (a config.json); every refusal names the file, the field and what was found. */
export async function readBertConfig(path: string): Promise<BertConfig> {
  let config: unknown;
  try {
    config = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new MissingInputError(`${path}: not found (a Hugging Face checkpoint folder has config.json)`);
    throw new InvalidDataError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new InvalidDataError(`${path}: expected a JSON object`);
  return parseBertConfig(config as Record<string, unknown>, path);
}

/** Checks a parsed config.json object; `source` names it in errors. */
export function parseBertConfig(config: Record<string, unknown>, source: string): BertConfig {
  const refuse = (what: string): never => {
    throw new InvalidDataError(`${source}: ${what}; textshift imports BERT checkpoints only (model_type "bert", absolute positions, hidden_act "gelu")`);
  };
  if (config['model_type'] !== 'bert') refuse(`model_type is ${JSON.stringify(config['model_type'])}, expected "bert"`);
  const architectures = config['architectures'] ?? ['BertModel'];
  if (!Array.isArray(architectures) || architectures.length === 0 || !architectures.every((a) => typeof a === 'string' && /^Bert[A-Z]\w*$/.test(a))) {
    refuse(`architectures is ${JSON.stringify(architectures)}, expected BertModel or a BertFor* head`);
  }
  const positions = config['position_embedding_type'] ?? 'absolute';
  if (positions !== 'absolute') refuse(`position_embedding_type is ${JSON.stringify(positions)}, expected "absolute"`);
  // "gelu" is the exact erf form in transformers; the tanh approximations ("gelu_new", "gelu_pytorch_tanh") differ by ~1e-3.
  if (config['hidden_act'] !== 'gelu') refuse(`hidden_act is ${JSON.stringify(config['hidden_act'])}, expected "gelu" (exact erf GELU)`);

  const int = (name: string, fallback?: number): number => {
    const value = config[name] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw new InvalidDataError(`${source}: field ${name} must be a positive integer, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const eps = config['layer_norm_eps'] ?? 1e-12;
  if (typeof eps !== 'number' || !(eps > 0 && eps < 1)) throw new InvalidDataError(`${source}: field layer_norm_eps must be a number in (0, 1), got ${JSON.stringify(eps)}`);
  const arch: BertArchitecture = {
    vocabSize: int('vocab_size'),
    hiddenSize: int('hidden_size'),
    numLayers: int('num_hidden_layers'),
    numHeads: int('num_attention_heads'),
    intermediateSize: int('intermediate_size'),
    maxPositions: int('max_position_embeddings'),
    typeVocabSize: int('type_vocab_size', 2),
    layerNormEps: eps,
  };
  if (arch.hiddenSize % arch.numHeads !== 0) {
    throw new InvalidDataError(`${source}: hidden_size ${arch.hiddenSize} is not divisible by num_attention_heads ${arch.numHeads}`);
  }
  return { arch, architecture: (architectures as string[])[0]! };
}

/**
 * Every encoder tensor a BERT checkpoint holds, by its Hugging Face name (without the `bert.` prefix of BertFor*
 * heads), in PyTorch's layout: a Linear weight is [out, in].
 */
export function bertWeightShapes(arch: BertArchitecture): Map<string, number[]> {
  const H = arch.hiddenSize;
  const I = arch.intermediateSize;
  const shapes = new Map<string, number[]>([
    ['embeddings.word_embeddings.weight', [arch.vocabSize, H]],
    ['embeddings.position_embeddings.weight', [arch.maxPositions, H]],
    ['embeddings.token_type_embeddings.weight', [arch.typeVocabSize, H]],
    ['embeddings.LayerNorm.weight', [H]],
    ['embeddings.LayerNorm.bias', [H]],
  ]);
  const linear = (name: string, out: number, inSize: number) => {
    shapes.set(`${name}.weight`, [out, inSize]);
    shapes.set(`${name}.bias`, [out]);
  };
  for (let l = 0; l < arch.numLayers; l++) {
    const p = `encoder.layer.${l}`;
    for (const part of ['query', 'key', 'value']) linear(`${p}.attention.self.${part}`, H, H);
    linear(`${p}.attention.output.dense`, H, H);
    shapes.set(`${p}.attention.output.LayerNorm.weight`, [H]).set(`${p}.attention.output.LayerNorm.bias`, [H]);
    linear(`${p}.intermediate.dense`, I, H);
    linear(`${p}.output.dense`, H, I);
    shapes.set(`${p}.output.LayerNorm.weight`, [H]).set(`${p}.output.LayerNorm.bias`, [H]);
  }
  return shapes;
}

/** Encoder weights by Hugging Face name, PyTorch layout (see bertWeightShapes). */
export type BertWeights = ReadonlyMap<string, Float32Array>;
