// What a warm process (a featurize Lambda container, a pool worker) must not remember about a BERT model folder:
// a failure (the model was not there yet) and a replaced file of the same size. Written once, run on the folder
// store (unit) and on S3 in the emulator (integration), where the model is also copied into /tmp.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { writeTestModel, TEST_MODEL_PRESETS } from '../../scripts/onnx/test-model.js';
import { FeatureSpec, type FeatureConfig } from '../../src/config/experiment.js';
import { MissingInputError } from '../../src/errors/index.js';
import { BertEncoder } from '../../src/features/bert/encoder.js';
import { POOLINGS } from '../../src/features/bert/pooling.js';
import { columnBlock } from '../../src/matrix/features.js';
import { denseEncoderFactory, materializeFolder, modelPrefix } from '../../src/features/encoders.js';
import type { BlobStore } from '../../src/store/blob-store.js';

/** How the model-cache checks reach one store implementation. */
export interface ModelCacheTarget {
  /** A fresh, empty store for one test, and how to remove it afterwards. */
  create(): Promise<{ store: BlobStore; cleanup(): Promise<void> }>;
}

const TEXTS = ['a stirring , funny and finally transporting re imagining of beauty and the beast', 'no', 'what \'s next ?'];

/** Every file of a local folder, by its '/'-separated path inside it. */
async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(relative(dir, path).split(sep).join('/'), await readFile(path));
  }
  return out;
}

/** Uploads a model folder under `prefix`, file by file, as a user would (each put replaces one object). */
async function upload(store: BlobStore, prefix: string, files: Map<string, Buffer>): Promise<void> {
  for (const [path, body] of files) await store.put(`${prefix}${path}`, body);
}

async function embedDirect(dir: string, spec: FeatureConfig & { kind: 'bert' }): Promise<Float32Array> {
  const encoder = await BertEncoder.load(dir);
  try {
    return (await encoder.encode(TEXTS, { poolings: [spec.pooling], maxLength: spec.maxLength, batchSize: spec.batchSize })).embeddings[spec.pooling];
  } finally {
    await encoder.close();
  }
}

/** The factory's vectors of the spec's pooling: its rows hold every pooling side by side (POOLINGS order). */
async function embedThroughFactory(store: BlobStore, spec: FeatureConfig & { kind: 'bert' }): Promise<Float32Array> {
  const encoder = await (await denseEncoderFactory('bert')).create(spec, store);
  try {
    const rows = { rows: TEXTS.length, cols: encoder.dim, data: await encoder.embed(TEXTS) };
    return columnBlock(rows, POOLINGS.indexOf(spec.pooling), POOLINGS.length).data;
  } finally {
    await encoder.close();
  }
}

/** sha256 of each file: a deep comparison of megabytes of Buffer takes seconds and prints unreadable diffs. */
function digests(files: Map<string, Buffer>): Record<string, string> {
  return Object.fromEntries([...files].map(([path, body]) => [path, createHash('sha256').update(body).digest('hex')]));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** The model-cache behaviour of one store, in one process (the module-level caches of encoders.ts stay warm). */
export function describeModelCacheContract(name: string, target: ModelCacheTarget): void {
  describe(`${name}: a warm process forgets model failures and replaced model files`, () => {
    let models: string;
    /** Two versions of one tiny model whose files have the same names and sizes but different weights. */
    let v1: Map<string, Buffer>;
    let v2: Map<string, Buffer>;
    const spec = FeatureSpec.parse({ kind: 'bert', model: 'tiny', pooling: 'mean', maxLength: 64 }) as FeatureConfig & { kind: 'bert' };
    const prefix = modelPrefix(spec);

    beforeAll(async () => {
      models = await mkdtemp(join(tmpdir(), 'textshift-model-versions-'));
      await writeTestModel(join(models, 'v1'), TEST_MODEL_PRESETS.tiny, 42);
      await writeTestModel(join(models, 'v2'), TEST_MODEL_PRESETS.tiny, 43);
      [v1, v2] = [await filesOf(join(models, 'v1')), await filesOf(join(models, 'v2'))];
    });
    afterAll(() => rm(models, { recursive: true, force: true }));

    async function open(): Promise<BlobStore> {
      const { store, cleanup } = await target.create();
      onTestFinished(cleanup);
      return store;
    }

    it('the two model versions differ only in content: same files, same sizes', () => {
      expect([...v2.keys()]).toEqual([...v1.keys()]);
      for (const [path, body] of v1) expect(v2.get(path)!.length, path).toBe(body.length);
      expect(v2.get('onnx/model.onnx')!.equals(v1.get('onnx/model.onnx')!)).toBe(false);
    });

    it('an identity that failed because the model was missing succeeds once the model is uploaded', async () => {
      const store = await open();
      const bert = await denseEncoderFactory('bert');
      const missing = await bert.identity(spec, store).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(missing).toBeInstanceOf(MissingInputError);
      expect((missing as Error).message).toContain(`${store.url}/${prefix}onnx/model.onnx not found`);

      await upload(store, prefix, v1);
      expect(await bert.identity(spec, store)).toMatch(/^bert-poolings:[0-9a-f]{16}:64$/);
    });

    it('a model file replaced by one of the same size gives a new identity and the new vectors', async () => {
      const store = await open();
      const bert = await denseEncoderFactory('bert');
      await upload(store, prefix, v1);
      const first = await bert.identity(spec, store);
      // Unchanged files: the same identity (and, on S3, the same /tmp copy).
      expect(await bert.identity(spec, store)).toBe(first);
      const firstCopy = await materializeFolder(store, prefix);
      // The copies of this store's model folder (one store per test), not left in the machine's temp folder.
      if (!store.localPath) onTestFinished(() => rm(dirname(firstCopy), { recursive: true, force: true }));
      expect(await materializeFolder(store, prefix)).toBe(firstCopy);
      const before = await embedThroughFactory(store, spec);
      expect(maxAbsDiff(before, await embedDirect(join(models, 'v1'), spec))).toBeLessThan(1e-6);

      await upload(store, prefix, v2);
      const second = await bert.identity(spec, store);
      expect(second).toMatch(/^bert-poolings:[0-9a-f]{16}:64$/);
      expect(second).not.toBe(first);
      const after = await embedThroughFactory(store, spec);
      expect(maxAbsDiff(after, await embedDirect(join(models, 'v2'), spec))).toBeLessThan(1e-6);
      expect(maxAbsDiff(after, before)).toBeGreaterThan(1e-3);

      const secondCopy = await materializeFolder(store, prefix);
      if (store.localPath) {
        // A folder store is read in place: no copy to go stale.
        expect(secondCopy).toBe(firstCopy);
      } else {
        // A fresh copy holding the new bytes; the superseded copy is gone from /tmp.
        expect(secondCopy).not.toBe(firstCopy);
        expect(digests(await filesOf(secondCopy))).toEqual(digests(v2));
        await expect(stat(firstCopy)).rejects.toMatchObject({ code: 'ENOENT' });
      }
    });
  });
}
