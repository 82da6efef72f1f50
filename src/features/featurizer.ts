import { createHash } from 'node:crypto';
import type { FeatureConfig } from '../config/experiment.js';
import type { BlobStore } from '../store/blob-store.js';
import { transformBow, vocabularyFromJson } from './bow.js';
import { encodeCsr } from '../matrix/csr.js';
import { encodeNpy } from '../matrix/npy.js';
import { denseEncoderFactory } from './encoders.js';
import { runKeys } from '../run/keys.js';
import type { Pooling } from './bert/pooling.js';

/** Turns texts into a feature cache entry (`.csr` for sparse counts, `.npy` for dense embeddings). */
export interface Featurizer {
  /** Identity of the encoder and its settings; part of every cache key. */
  identity: string;
  ext: 'csr' | 'npy';
  encode(texts: string[]): Promise<Buffer>;
  /** Releases encoder resources (sessions, tensors). */
  close(): Promise<void>;
}

/** What a cache entry of a family's encoder is: its key's identity and extension, and the layout of its rows. */
export interface FeaturizerIdentity extends Pick<Featurizer, 'identity' | 'ext'> {
  /** Names of the column blocks each row holds (every pooling of a BERT-family pass); absent: one embedding per row. */
  blocks?: readonly Pooling[];
}

/**
 * The version of each feature kind's code, part of every cache key of that kind: entries written by other code are
 * never reused. The rule: bump a kind's number in the same change that alters what its featurizer outputs for the
 * same texts and model files (tokenization, normalization, truncation, pooling, the vector arithmetic, the .csr/.npy
 * encoding); the next run then encodes afresh and old entries expire unused. Leave it alone for changes that keep
 * every output byte the same.
 */
export const FEATURE_CODE_VERSIONS: Readonly<Record<FeatureConfig['kind'], number>> = { bow: 1, bert: 1, use: 1 };

/** An encoder identity with its kind's feature code version. */
function versioned(kind: FeatureConfig['kind'], identity: string): string {
  return `${identity}@code-v${FEATURE_CODE_VERSIONS[kind]}`;
}

/** Cache identity of a family's encoder, without loading it (a cache hit then does no encoder work). */
export async function featurizerIdentity(
  feature: string,
  spec: FeatureConfig,
  store: BlobStore,
  runId: string,
): Promise<FeaturizerIdentity> {
  if (spec.kind === 'bow') {
    return { identity: versioned('bow', bowIdentity((await store.getOrThrow(runKeys(runId).vocabulary(feature))).toString('utf8'))), ext: 'csr' };
  }
  const factory = await denseEncoderFactory(spec.kind);
  return { identity: versioned(spec.kind, await factory.identity(spec, store)), ext: 'npy', ...(factory.blocks ? { blocks: factory.blocks } : {}) };
}

/** The featurizer of one family of a run (the BoW vocabulary is the one prepare fitted for this run). */
export async function createFeaturizer(feature: string, spec: FeatureConfig, store: BlobStore, runId: string): Promise<Featurizer> {
  if (spec.kind === 'bow') {
    const key = runKeys(runId).vocabulary(feature);
    const json = (await store.getOrThrow(key)).toString('utf8');
    const vocab = vocabularyFromJson(json, `${store.url}/${key}`);
    return {
      identity: versioned('bow', bowIdentity(json)),
      ext: 'csr',
      encode: async (texts) => encodeCsr(transformBow(vocab, texts)),
      close: async () => {},
    };
  }
  const factory = await denseEncoderFactory(spec.kind);
  const [identity, enc] = await Promise.all([factory.identity(spec, store), factory.create(spec, store)]);
  return {
    identity: versioned(spec.kind, identity),
    ext: 'npy',
    encode: async (texts) => encodeNpy({ rows: texts.length, cols: enc.dim, data: await enc.embed(texts) }),
    close: () => enc.close(),
  };
}

/** Identity of a BoW featurizer: the vocabulary's content. */
export function bowIdentity(vocabularyJson: string): string {
  return `bow:${createHash('sha256').update(vocabularyJson).digest('hex').slice(0, 16)}`;
}

/**
 * Content hash of a shard: encoder identity plus every text, so equal inputs share a cache entry across runs. Each
 * part goes in with its UTF-8 byte length in front, so no two different lists of texts hash alike (texts may hold
 * any character, NUL included, so no separator could do that).
 */
export function shardContentHash(identity: string, texts: readonly string[]): string {
  const h = createHash('sha256');
  const add = (part: string) => {
    const bytes = Buffer.from(part, 'utf8');
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(bytes.length));
    h.update(length).update(bytes);
  };
  add(identity);
  for (const t of texts) add(t);
  return h.digest('hex');
}
