/**
 * Which shape (width, depth) a `bert` family's model has, for planning: the record of the model installed in the
 * store (`models/<name>/textshift-model.json`), else the known-model table, else bert-base, said as an assumption.
 */
import { BERT_BASE_SHAPE, type EncoderShape } from '../features/bert/shape.js';
import { modelPrefix } from '../run/keys.js';
import type { BlobStore } from '../store/blob-store.js';
import { KNOWN_MODELS } from './known-models.js';
import { MODEL_RECORD_FILE, ModelRecord } from './model-record.js';

/** A model's shape and where it came from. */
export interface ResolvedShape {
  shape: EncoderShape;
  from: 'installed' | 'known' | 'assumed';
}

/** Resolves the shape of model `name` from `store` (the run store holding `models/`), the known models, or bert-base. */
export async function encoderShapeOf(name: string, store: BlobStore | undefined): Promise<ResolvedShape> {
  const body = store === undefined ? undefined : await store.get(`${modelPrefix(name)}${MODEL_RECORD_FILE}`);
  if (body !== undefined) {
    // A record that does not parse is the encoder's problem to report when it loads; the plan falls back.
    const record = ModelRecord.safeParse(safeJson(body.toString('utf8')));
    if (record.success) {
      const { hidden, layers, intermediate } = record.data.dims;
      return { shape: { hidden, layers, intermediate }, from: 'installed' };
    }
  }
  const known = KNOWN_MODELS[name];
  if (known !== undefined) return { shape: known.shape, from: 'known' };
  return { shape: BERT_BASE_SHAPE, from: 'assumed' };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
