// A warm featurize container (the Lambda handlers' deploymentStageContext keeps stores, memo and encoder caches
// between invocations) must not replay a failure whose cause is gone: a BERT shard that failed because a file of the
// run's model was gone succeeds when it is featurized again (a redrive) once the file is back, in the same process.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTestModel, TEST_MODEL_PRESETS } from '../../../scripts/onnx/test-model.js';
import { InputChangedError } from '../../../src/workflow/pinned-inputs.js';
import { silentReporter } from '../../../src/run/reporter.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { deploymentStageContext } from '../../../src/workflow/deployment-context.js';
import { featurize } from '../../../src/workflow/stages/featurize.js';
import { prepare } from '../../../src/workflow/stages/prepare.js';
import { dataRoot } from '../../support/data.js';
import { testDeployment } from '../../support/deployment.js';

const dir = mkdtempSync(join(tmpdir(), 'textshift-warm-'));
const store = new FsBlobStore(dir);
const env = { TEXTSHIFT_STORE_URL: pathToFileURL(dir).href, TEXTSHIFT_DATA_URL: pathToFileURL(dataRoot()).href };
let runId: string;
let shardKey: string;

beforeAll(async () => {
  await writeTestModel(join(dir, 'models', 'tiny-bert'), TEST_MODEL_PRESETS.tiny);
  await store.put('experiments/tiny-bert.json', readFileSync(new URL('../../fixtures/experiments/tiny-bert.json', import.meta.url)));
  const ctx = { store, data: new FsBlobStore(dataRoot()), reporter: silentReporter, memo: new Map() };
  runId = (await prepare(ctx, { experimentKey: 'experiments/tiny-bert.json', quick: true }, { deployment: await testDeployment() })).runId;
  shardKey = (await store.list(`runs/${runId}/shards/bert/`))[0]!.key;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a warm featurize container', () => {
  it('featurizes a BERT shard that failed for a model file gone once the file is back', async () => {
    const onnx = 'models/tiny-bert/onnx/model.onnx';
    const model = await store.getOrThrow(onnx);
    await store.delete(onnx);
    const failed = await featurize(deploymentStageContext(runId, env), { runId, shardKey }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(InputChangedError);
    expect((failed as Error).message).toContain(`${join(dir, ...onnx.split('/'))} was removed after run ${runId} pinned it`);

    await store.put(onnx, model);
    const ctx = deploymentStageContext(runId, env);
    const out = await featurize(ctx, { runId, shardKey });
    expect(out).toMatchObject({ shardKey, cached: false });
    expect(out.cacheKey).toMatch(/\.npy$/);
    expect(await store.head(out.cacheKey)).toBeDefined();
  });
});
