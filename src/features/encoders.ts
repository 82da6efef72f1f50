import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { FeatureConfig } from '../config/experiment.js';
import { modelPrefix as modelKeyPrefix } from '../run/keys.js';
import type { BlobStore } from '../store/blob-store.js';
import { joinColumnBlocks } from '../matrix/features.js';
import { POOLINGS, type Pooling } from './bert/pooling.js';
import { definesOutputs } from './bert/model-files.js';
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

/**
 * A local folder holding a store prefix: the folder itself for a folder store, else a download into a temp folder
 * named by the listing's keys, sizes and ETags (renamed into place when complete). Later shards in the container
 * reuse it while the objects are unchanged; a replaced file (even of equal size) has a new ETag, so it is downloaded
 * afresh, and the superseded copy of the same prefix is removed (Lambda's /tmp is small).
 */
export async function materializeFolder(store: BlobStore, prefix: string): Promise<string> {
  const objects = await store.list(prefix);
  if (objects.length === 0) throw new MissingInputError(`${store.url}/${prefix}: no model files (expected onnx/model.onnx, config.json and vocab.txt or tokenizer.json)`);
  if (store.localPath) return store.localPath(prefix.replace(/\/$/, ''));
  const hash = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 16);
  const copies = join(tmpdir(), 'textshift-models', hash(store.url, prefix));
  // Without an ETag for every object a copy cannot be checked against the store: download into a folder of its own.
  const version = objects.every((o) => o.etag) ? hash(JSON.stringify(objects)) : `unchecked-${process.pid}-${randomUUID()}`;
  const dir = join(copies, version);
  if (await isDirectory(dir)) return dir;
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
  for (const other of await readdir(copies)) {
    if (other !== version && !other.includes('.partial-')) await rm(join(copies, other), { recursive: true, force: true });
  }
  return dir;
}

/** True when the path is a folder (a completed copy: copies are renamed into place whole). */
async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

/**
 * Per process, the content hash of each model folder with the listing it was computed from: an unchanged listing
 * (same keys, sizes and ETags) reuses the hash; a changed one, or a listing without ETags, hashes the files again.
 * Only a completed hash is kept, so a model that was missing is found once it has been uploaded.
 */
const bertHashes = new Map<string, { listing: string; hash: Promise<string> }>();

/** Hash of the files of a model folder that determine its vectors; throws naming the folder when it has no model. */
async function bertModelHash(store: BlobStore, prefix: string): Promise<string> {
  const files = (await store.list(prefix)).filter((o) => definesOutputs(o.key.slice(prefix.length)));
  if (!files.some((f) => f.key.endsWith('onnx/model.onnx'))) {
    throw new MissingInputError(
      `${store.url}/${prefix}onnx/model.onnx not found: install the model there with textshift models fetch or textshift models import (then models push for a bucket)`,
    );
  }
  const slot = `${store.url}|${prefix}`;
  const listing = JSON.stringify(files);
  const known = bertHashes.get(slot);
  if (known?.listing === listing && files.every((f) => f.etag)) return known.hash;
  const hash = (async () => {
    const h = createHash('sha256');
    for (const f of files) h.update(f.key.slice(prefix.length)).update('\0').update(await store.getOrThrow(f.key)).update('\0');
    return h.digest('hex').slice(0, 16);
  })();
  const entry = { listing, hash };
  bertHashes.set(slot, entry);
  hash.catch(() => {
    if (bertHashes.get(slot) === entry) bertHashes.delete(slot);
  });
  return hash;
}

/**
 * A BERT-family encoder computes every pooling from one pass over each text: a row holds the text's mean, max, cls and
 * sep vectors side by side (POOLINGS order), so families that differ only in pooling share one cache entry per text.
 */
const bertFactory: DenseEncoderFactory = {
  blocks: POOLINGS,
  /** Hash of the files that determine the vectors, plus truncation; not the pooling, as every pooling is computed. */
  async identity(spec, store) {
    if (spec.kind !== 'bert') throw new InternalError(`bert encoder given a ${spec.kind} feature`);
    return `bert-poolings:${await bertModelHash(store, modelPrefix(spec))}:${spec.maxLength}`;
  },
  async create(spec, store): Promise<DenseEncoder> {
    if (spec.kind !== 'bert') throw new InternalError(`bert encoder given a ${spec.kind} feature`);
    const { BertEncoder } = await import('./bert/encoder.js');
    const encoder = await BertEncoder.load(await materializeFolder(store, modelPrefix(spec)));
    return {
      dim: encoder.hiddenSize * POOLINGS.length,
      embed: async (texts) => {
        const { embeddings } = await encoder.encode(texts, { poolings: POOLINGS, maxLength: spec.maxLength, batchSize: spec.batchSize });
        return joinColumnBlocks(POOLINGS.map((p) => embeddings[p]), texts.length);
      },
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
  /**
   * When a row holds several embeddings of the text side by side: their names, in column order, each `dim / length`
   * wide (a BERT-family row holds every pooling). A family then trains on the block its spec names.
   */
  blocks?: readonly Pooling[];
  identity(spec: FeatureConfig, store: BlobStore): Promise<string>;
  create(spec: FeatureConfig, store: BlobStore): Promise<DenseEncoder>;
}
