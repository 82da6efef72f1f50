// A run encodes with the model versions it started with, on S3 as deployed (a versioned bucket in the emulator): Prepare
// pins every file of the BERT-family model folder by VersionId; the model is then uploaded again, file by file, with
// other weights (same names and sizes), and a Featurize shard still encodes with the pinned one: its encoder identity,
// its vectors and the model copy in /tmp are those of the first upload, not of the current objects. The stage
// functions run in this process on S3BlobStores, as the Lambda handlers call them.
import { FEATURE_CODE_VERSIONS } from '../../src/features/featurizer.js';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { writeTestModel, TEST_MODEL_PRESETS } from '../../scripts/onnx/test-model.js';
import { FeatureSpec, type FeatureConfig } from '../../src/config/experiment.js';
import { denseEncoderFactory, materializeFolder } from '../../src/features/encoders.js';
import { decodeNpy } from '../../src/matrix/npy.js';
import { shardResultKey } from '../../src/run/keys.js';
import { readManifest } from '../../src/run/manifest.js';
import type { ShardResult, ShardTask } from '../../src/run/records.js';
import { silentReporter } from '../../src/run/reporter.js';
import { readShardPlan } from '../../src/run/shard-plan.js';
import type { BlobStore } from '../../src/store/blob-store.js';
import { FsBlobStore } from '../../src/store/fs-store.js';
import { S3BlobStore } from '../../src/store/s3-store.js';
import { pinnedModelStore } from '../../src/workflow/pinned-models.js';
import { readSplit } from '../../src/workflow/split-files.js';
import { featurize } from '../../src/workflow/stages/featurize.js';
import { prepare } from '../../src/workflow/stages/prepare.js';
import { testDeployment } from '../support/deployment.js';
import { createTestBucket, emulatorS3 } from './setup/aws.js';
import { uploadTinyRunInputs } from './support/run-inputs.js';

const MODEL = 'models/tiny-bert/';
const spec = FeatureSpec.parse({ kind: 'bert', model: 'tiny-bert', pooling: 'mean', maxLength: 128 }) as FeatureConfig;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Every file of a local folder by its '/'-separated path inside it. */
async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) out.set(relative(dir, join(entry.parentPath, entry.name)).split(sep).join('/'), await readFile(join(entry.parentPath, entry.name)));
  }
  return out;
}
const digests = (files: Map<string, Buffer>) => Object.fromEntries([...files].map(([path, body]) => [path, sha256(body)]));

/** What the bert encoder gives for `texts` with the model of a local folder store: its identity and its rows. */
async function encodeWith(store: BlobStore, texts: string[]): Promise<{ identity: string; rows: Float32Array }> {
  const bert = await denseEncoderFactory('bert');
  const encoder = await bert.create(spec, store);
  try {
    return { identity: await bert.identity(spec, store), rows: await encoder.embed(texts) };
  } finally {
    await encoder.close();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe(`a run encodes with the model versions Prepare pinned (versioned bucket in ${inject('awsEmulator')})`, () => {
  let s3: S3Client;
  let remove: () => Promise<void>;
  let store: S3BlobStore;
  let local: string;
  /** The model as first uploaded (the run's) and as uploaded again, each in a folder store of its own. */
  let first: Map<string, Buffer>;
  let second: Map<string, Buffer>;
  const uploaded: Record<string, string> = {};

  beforeAll(async () => {
    s3 = emulatorS3();
    const bucket = await createTestBucket(s3, { versioned: true });
    remove = bucket.remove;
    store = new S3BlobStore({ bucket: bucket.bucket, client: s3 });
    await uploadTinyRunInputs(s3, bucket.bucket);
    await store.put('experiments/tiny-bert.json', readFileSync(new URL('../fixtures/experiments/tiny-bert.json', import.meta.url)));
    local = await mkdtemp(join(tmpdir(), 'textshift-pinned-models-'));
    await writeTestModel(join(local, 'first', MODEL), TEST_MODEL_PRESETS.tiny, 42);
    await writeTestModel(join(local, 'second', MODEL), TEST_MODEL_PRESETS.tiny, 43);
    [first, second] = [await filesOf(join(local, 'first', MODEL)), await filesOf(join(local, 'second', MODEL))];
    for (const [path, body] of first) {
      await store.put(`${MODEL}${path}`, body);
      uploaded[`${MODEL}${path}`] = (await store.head(`${MODEL}${path}`))!.version!;
    }
  }, 60_000);

  afterAll(async () => {
    await remove?.();
    s3?.destroy();
    if (local) await rm(local, { recursive: true, force: true });
  });

  it('Featurize after the model is uploaded again reads the pinned versions: the first upload\'s identity, vectors and files', async () => {
    const data = new S3BlobStore({ bucket: store.bucket, prefix: 'datasets', client: s3 });
    const plan = await prepare({ store, data, reporter: silentReporter }, { experimentKey: 'experiments/tiny-bert.json', quick: true }, { deployment: await testDeployment() });
    const { runId } = plan;
    const { pinnedModels } = await readManifest(store, runId);
    // Every file the encoder reads, by the version of the first upload (textshift-model.json is no input of the vectors).
    const inputs = Object.keys(uploaded).filter((k) => !k.endsWith('textshift-model.json'));
    expect(Object.keys(pinnedModels ?? {}).sort()).toEqual(inputs.sort());
    for (const key of inputs) expect(pinnedModels![key], key).toMatchObject({ version: uploaded[key], bytes: first.get(key.slice(MODEL.length))!.length });

    // The same model name uploaded again, file by file, with other weights of the same sizes.
    for (const [path, body] of second) await store.put(`${MODEL}${path}`, body);
    expect((await store.head(`${MODEL}onnx/model.onnx`))!.version).not.toBe(uploaded[`${MODEL}onnx/model.onnx`]);
    expect(sha256(await store.getOrThrow(`${MODEL}onnx/model.onnx`))).toBe(sha256(second.get('onnx/model.onnx')!));

    const shardKey = (await readShardPlan(store, runId, plan.shardPlan)).find((k) => k.includes('/shards/bert/'))!;
    const out = await featurize({ store, data, reporter: silentReporter }, { runId, shardKey });
    expect(out.cached).toBe(false);

    const task = JSON.parse((await store.getOrThrow(shardKey)).toString('utf8')) as ShardTask;
    const split = await readSplit(store, task.splitKey);
    const texts = task.rows.map((i) => split[i]!.text);
    const [pinned, current] = [await encodeWith(new FsBlobStore(join(local, 'first')), texts), await encodeWith(new FsBlobStore(join(local, 'second')), texts)];
    expect(pinned.identity).not.toBe(current.identity);
    const result = JSON.parse((await store.getOrThrow(shardResultKey(shardKey))).toString('utf8')) as ShardResult;
    expect(result.encoder).toBe(`${pinned.identity}@code-v${FEATURE_CODE_VERSIONS.bert}`);
    const rows = decodeNpy(await store.getOrThrow(out.cacheKey)).data;
    expect(maxAbsDiff(rows, pinned.rows)).toBeLessThan(1e-6);
    expect(maxAbsDiff(rows, current.rows)).toBeGreaterThan(1e-3);

    // The copy in /tmp the encoder loaded holds the pinned bytes.
    const copy = await materializeFolder(pinnedModelStore(store, pinnedModels!, runId), MODEL);
    try {
      const pinnedFiles = new Map([...first].filter(([path]) => inputs.includes(`${MODEL}${path}`)));
      expect(digests(await filesOf(copy))).toEqual(digests(pinnedFiles));
    } finally {
      await rm(dirname(copy), { recursive: true, force: true });
    }
  }, 120_000);
});
