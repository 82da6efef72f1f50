// A run encodes with the model files it started with. Prepare pins every file of the BERT-family model folder
// (on a folder store by sha256); a Featurize shard run after a model file was replaced, added or removed fails naming
// the file and the run, instead of encoding part of the run with another model. With the pinned bytes back, it
// encodes with exactly the run's encoder. Real ONNX Runtime on the tiny random-weight BERT, real SST-2/IMDB rows.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTestModel, TEST_MODEL_PRESETS } from '../../../scripts/onnx/test-model.js';
import { MissingInputError } from '../../../src/errors/index.js';
import { readManifest } from '../../../src/run/manifest.js';
import { shardResultKey } from '../../../src/run/keys.js';
import type { ShardResult } from '../../../src/run/records.js';
import { silentReporter } from '../../../src/run/reporter.js';
import { readShardPlan } from '../../../src/run/shard-plan.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import type { StageContext } from '../../../src/workflow/context.js';
import { InputChangedError } from '../../../src/workflow/pinned-inputs.js';
import { featurize } from '../../../src/workflow/stages/featurize.js';
import { prepare } from '../../../src/workflow/stages/prepare.js';
import { dataRoot } from '../../support/data.js';
import { testDeployment } from '../../support/deployment.js';

const dir = mkdtempSync(join(tmpdir(), 'textshift-pinned-models-'));
const store = new FsBlobStore(dir);
const data = new FsBlobStore(dataRoot());
/** A fresh process's context (another pool worker, another Lambda container): nothing memoized. */
const cold = (): StageContext => ({ store, data, reporter: silentReporter });
const MODEL = 'models/tiny-bert/';
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (err: unknown) => err as Error,
  );

let runId: string;
let bertShards: string[];
/** The pinned model's files and a second model of the same shape (another seed): same names and sizes, other weights. */
let v1: Record<string, Buffer>;
let otherOnnx: Buffer;

beforeAll(async () => {
  await writeTestModel(join(dir, 'models', 'tiny-bert'), TEST_MODEL_PRESETS.tiny, 42);
  await writeTestModel(join(dir, 'other'), TEST_MODEL_PRESETS.tiny, 43);
  v1 = Object.fromEntries(await Promise.all(['config.json', 'vocab.txt', 'onnx/model.onnx'].map(async (f) => [f, await store.getOrThrow(`${MODEL}${f}`)])));
  otherOnnx = await store.getOrThrow('other/onnx/model.onnx');
  await store.put('experiments/tiny-bert.json', readFileSync(new URL('../../fixtures/experiments/tiny-bert.json', import.meta.url)));
  const plan = await prepare(cold(), { experimentKey: 'experiments/tiny-bert.json', quick: true }, { deployment: await testDeployment() });
  runId = plan.runId;
  bertShards = (await readShardPlan(store, runId, plan.shardPlan)).filter((k) => k.includes('/shards/bert/'));
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a run encodes with the model files Prepare pinned (folder store)', () => {
  it('Prepare pins every file of the model folder the encoder reads, by size and sha256', async () => {
    expect(otherOnnx.length).toBe(v1['onnx/model.onnx']!.length);
    expect(otherOnnx.equals(v1['onnx/model.onnx']!)).toBe(false);
    const { pinnedModels } = await readManifest(store, runId);
    expect(pinnedModels).toEqual(
      Object.fromEntries(Object.entries(v1).map(([f, body]) => [`${MODEL}${f}`, { bytes: body.length, etag: expect.any(String), sha256: sha256(body) }])),
    );
    expect(bertShards.length).toBeGreaterThan(2);
  });

  it("a model file replaced after Prepare fails the next shard naming the file and the run; restored, the shard encodes with the run's encoder", async () => {
    expect((await featurize(cold(), { runId, shardKey: bertShards[0]! })).cached).toBe(false);
    const encoderOf = async (shardKey: string) => (JSON.parse((await store.getOrThrow(shardResultKey(shardKey))).toString('utf8')) as ShardResult).encoder;
    const pinned = await encoderOf(bertShards[0]!);
    expect(pinned).toMatch(/^bert-poolings:[0-9a-f]{16}:128@code-v\d+$/);

    await store.put(`${MODEL}onnx/model.onnx`, otherOnnx);
    const err = await failure(featurize(cold(), { runId, shardKey: bertShards[1]! }));
    expect(err).toBeInstanceOf(InputChangedError);
    expect(err!.message).toContain(`${join(dir, 'models', 'tiny-bert', 'onnx', 'model.onnx')} changed after run ${runId} pinned it`);
    expect(err!.message).toContain(`(sha256 ${sha256(v1['onnx/model.onnx']!)} then, ${sha256(otherOnnx)} now)`);
    expect(await store.head(shardResultKey(bertShards[1]!))).toBeUndefined();

    // The pinned bytes back (a new file: another inode and mtime, the same content): the run's encoder again.
    await store.put(`${MODEL}onnx/model.onnx`, v1['onnx/model.onnx']!);
    expect((await featurize(cold(), { runId, shardKey: bertShards[1]! })).cached).toBe(false);
    expect(await encoderOf(bertShards[1]!)).toBe(pinned);
  });

  it('a file the encoder would read that appears after Prepare fails the shard naming it', async () => {
    await store.put(`${MODEL}tokenizer_config.json`, JSON.stringify({ do_lower_case: false }));
    try {
      const err = await failure(featurize(cold(), { runId, shardKey: bertShards[2]! }));
      expect(err).toBeInstanceOf(InputChangedError);
      expect(err!.message).toContain(`${join(dir, 'models', 'tiny-bert', 'tokenizer_config.json')} appeared after run ${runId} pinned the model folder ${MODEL}`);
    } finally {
      await store.delete(`${MODEL}tokenizer_config.json`);
    }
  });

  it('a model file removed after Prepare fails the shard naming it', async () => {
    await store.delete(`${MODEL}vocab.txt`);
    try {
      const err = await failure(featurize(cold(), { runId, shardKey: bertShards[2]! }));
      expect(err).toBeInstanceOf(InputChangedError);
      expect(err!.message).toContain(`${join(dir, 'models', 'tiny-bert', 'vocab.txt')} was removed after run ${runId} pinned it (sha256 ${sha256(v1['vocab.txt']!)})`);
    } finally {
      await store.put(`${MODEL}vocab.txt`, v1['vocab.txt']!);
    }
  });
});

describe('a model missing when Prepare runs', () => {
  it('is refused by Prepare naming the file and its family; once installed, the resumed run pins it', async () => {
    const exp = JSON.parse(readFileSync(new URL('../../fixtures/experiments/tiny-bert.json', import.meta.url), 'utf8')) as {
      features: Record<string, Record<string, unknown>>;
    };
    exp.features.bert!.model = 'late-bert';
    await store.put('experiments/tiny-late.json', JSON.stringify(exp));
    const start = async () => prepare(cold(), { experimentKey: 'experiments/tiny-late.json', quick: true, runId: 'late' }, { deployment: await testDeployment() });

    const err = await failure(start());
    expect(err).toBeInstanceOf(MissingInputError);
    expect(err!.message).toBe(
      `${store.url}/models/late-bert/onnx/model.onnx not found: feature family bert of run late encodes with the BERT-family model "late-bert". ` +
        'Install it with textshift models fetch or textshift models import (then textshift models push for a bucket), then resume the run',
    );
    expect(await store.list('runs/late/shards/')).toEqual([]);

    await writeTestModel(join(dir, 'models', 'late-bert'), TEST_MODEL_PRESETS.tiny, 7);
    await start();
    expect(Object.keys((await readManifest(store, 'late')).pinnedModels ?? {})).toEqual(['config.json', 'onnx/model.onnx', 'vocab.txt'].map((f) => `models/late-bert/${f}`));
  }, 60_000);
});
