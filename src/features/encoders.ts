import { createHash } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { FeatureConfig } from '../config/experiment.js';
import { modelPrefix as modelKeyPrefix } from '../run/keys.js';
import type { BlobStore } from '../store/blob-store.js';
import { InternalError, MissingInputError } from '../errors/index.js';

/**
 * Dense sentence encoders by feature kind. Imported lazily so BoW-only processes never load ONNX Runtime or
 * TensorFlow.js.
 */
export async function denseEncoderFactory(kind: string): Promise<DenseEncoderFactory> {
  if (kind === 'bert') return bertFactory;
  if (kind === 'use') return useFactory;
  throw new InternalError(`no dense encoder for feature kind "${kind}"`);
}

/** Store prefix of a BERT-family model folder (HF/optimum layout). */
export function modelPrefix(spec: FeatureConfig & { kind: 'bert' }): string {
  return modelKeyPrefix(spec.model);
}

const FILES_THAT_DEFINE_OUTPUTS = /(^|\/)(onnx\/model\.onnx|config\.json|vocab\.txt|tokenizer\.json|tokenizer_config\.json)$/;

/**
 * A local folder holding a store prefix: the folder itself for a folder store, else a download into a
 * content-addressed temp folder (renamed into place when complete, reused by later shards in the container).
 */
export async function materializeFolder(store: BlobStore, prefix: string): Promise<string> {
  const objects = await store.list(prefix);
  if (objects.length === 0) throw new MissingInputError(`${store.url}/${prefix}: no model files (expected onnx/model.onnx, config.json and vocab.txt or tokenizer.json)`);
  if (store.localPath) return store.localPath(prefix.replace(/\/$/, ''));
  const id = createHash('sha256').update(store.url).update(JSON.stringify(objects)).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'textshift-models', id);
  const partial = `${dir}.partial-${process.pid}`;
  try {
    await rm(partial, { recursive: true, force: true });
    for (const o of objects) {
      const path = join(partial, ...o.key.slice(prefix.length).split('/'));
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, await store.getOrThrow(o.key));
    }
    await rename(partial, dir);
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    // Another process finished the same download first.
    if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return dir;
}

const bertIdentities = new Map<string, Promise<string>>();

const bertFactory: DenseEncoderFactory = {
  /** Hash of the files that determine the vectors, plus pooling and truncation. */
  identity(spec, store) {
    if (spec.kind !== 'bert') throw new InternalError(`bert encoder given a ${spec.kind} feature`);
    const prefix = modelPrefix(spec);
    const key = `${store.url}|${prefix}|${spec.pooling}|${spec.maxLength}`;
    if (!bertIdentities.has(key)) {
      bertIdentities.set(
        key,
        (async () => {
          const h = createHash('sha256');
          const files = (await store.list(prefix)).filter((o) => FILES_THAT_DEFINE_OUTPUTS.test(o.key.slice(prefix.length)));
          if (!files.some((f) => f.key.endsWith('onnx/model.onnx'))) {
            throw new MissingInputError(`${store.url}/${prefix}onnx/model.onnx not found: put the model folder (HF optimum layout) under ${prefix}`);
          }
          for (const f of files) h.update(f.key.slice(prefix.length)).update('\0').update(await store.getOrThrow(f.key)).update('\0');
          return `bert:${h.digest('hex').slice(0, 16)}:${spec.pooling}:${spec.maxLength}`;
        })(),
      );
    }
    return bertIdentities.get(key)!;
  },
  async create(spec, store): Promise<DenseEncoder> {
    if (spec.kind !== 'bert') throw new InternalError(`bert encoder given a ${spec.kind} feature`);
    const { BertEncoder } = await import('./bert/encoder.js');
    const encoder = await BertEncoder.load(await materializeFolder(store, modelPrefix(spec)));
    return {
      dim: encoder.hiddenSize,
      embed: async (texts) => (await encoder.encode(texts, { pooling: spec.pooling, maxLength: spec.maxLength, batchSize: spec.batchSize })).embeddings,
      close: () => encoder.close(),
    };
  },
};

const useFactory: DenseEncoderFactory = {
  async identity() {
    const { useIdentity } = await import('./use/encoder.js');
    return useIdentity();
  },
  async create(spec): Promise<DenseEncoder> {
    if (spec.kind !== 'use') throw new InternalError(`use encoder given a ${spec.kind} feature`);
    const { createUseEncoder } = await import('./use/encoder.js');
    const encoder = await createUseEncoder({ batchSize: spec.batchSize });
    return { dim: encoder.dim, embed: (texts) => encoder.embed(texts), close: () => encoder.close() };
  },
};

/** A dense sentence encoder (USE, BERT). */
export interface DenseEncoder {
  dim: number;
  embed(texts: string[]): Promise<Float32Array>;
  close(): Promise<void>;
}

/** How a dense feature kind names its configuration cheaply (for cache keys) and builds its encoder (encoders.ts). */
export interface DenseEncoderFactory {
  identity(spec: FeatureConfig, store: BlobStore): Promise<string>;
  create(spec: FeatureConfig, store: BlobStore): Promise<DenseEncoder>;
}
