/**
 * The encoder weights of a Hugging Face BERT checkpoint (model.safetensors). BertModel stores them unprefixed;
 * BertFor* heads put the same encoder under `bert.` beside their own tensors (cls.*, classifier.*, qa_outputs.*),
 * which an encoder does not use. The pooler (pooler.dense) is not used either: sentence vectors come from
 * last_hidden_state.
 */
import { readFile } from 'node:fs/promises';
import { InvalidDataError, MissingInputError } from '../errors/index.js';
import { decodeSafetensors } from '../model/safetensors.js';
import { bertWeightShapes, type BertArchitecture, type BertWeights } from './bert-config.js';

/** Encoder weights read from a checkpoint, and the checkpoint's tensors that are not part of the encoder. */
export interface CheckpointWeights {
  weights: BertWeights;
  ignored: string[];
}

/** The encoder's name for a checkpoint tensor: `bert.` prefix dropped; TF-era LayerNorm gamma/beta as weight/bias. */
function encoderName(name: string): string {
  return name.replace(/^bert\./, '').replace(/LayerNorm\.gamma$/, 'LayerNorm.weight').replace(/LayerNorm\.beta$/, 'LayerNorm.bias');
}

/** Reads the encoder tensors of `path` and checks each against the shape config.json implies. */
export async function readBertWeights(path: string, arch: BertArchitecture): Promise<CheckpointWeights> {
  const shapes = bertWeightShapes(arch);
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new MissingInputError(`${path}: not found (textshift imports model.safetensors; convert a pytorch_model.bin first)`);
    }
    throw err;
  }
  const { tensors, skipped } = decodeSafetensors(buf, path, (name) => shapes.has(encoderName(name)));
  const weights = new Map<string, Float32Array>();
  for (const [name, tensor] of tensors) {
    const key = encoderName(name);
    if (weights.has(key)) throw new InvalidDataError(`${path}: holds the encoder tensor ${key} twice (with and without the "bert." prefix)`);
    const expected = shapes.get(key)!;
    if (tensor.shape.join() !== expected.join()) {
      throw new InvalidDataError(`${path}: tensor ${name} has shape [${tensor.shape.join(', ')}], expected [${expected.join(', ')}] from config.json`);
    }
    weights.set(key, tensor.data);
  }
  const missing = [...shapes.keys()].filter((k) => !weights.has(k));
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? `, … (${missing.length} in all)` : '');
    throw new InvalidDataError(`${path}: lacks BERT encoder tensors ${shown}; is it a BERT checkpoint matching its config.json?`);
  }
  return { weights, ignored: skipped };
}
