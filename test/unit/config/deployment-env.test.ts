// The environment half of the deployment contract: what the handlers and the trainer read, parsed with errors that
// name the variable; the stage context built from it; and the guarantee that no edge spells a variable name itself.
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEPLOYMENT_ENV, readDeploymentEnv, requireStores } from '../../../src/config/deployment-env.js';
import { ConfigError } from '../../../src/errors/index.js';
import { PREFIXES } from '../../../src/run/keys.js';
import { DATASETS_FOLDER, FsBlobStore, S3BlobStore } from '../../../src/store/index.js';
import { deploymentStageContext } from '../../../src/workflow/deployment-context.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const COST_OPTIONS = { batchInstanceType: 'g4dn.xlarge', batchMarket: 'spot', lambdaMemoryMb: { prepare: 3008, featurize: 2048, report: 1024, markFailed: 256 } };

describe('readDeploymentEnv', () => {
  it('on AWS: BUCKET is the run store, its datasets/ folder the data root; the Report variables are parsed JSON', () => {
    const env = readDeploymentEnv({
      BUCKET: 'textshift-data',
      TEXTSHIFT_COST_OPTIONS: JSON.stringify(COST_OPTIONS),
      TEXTSHIFT_STAGE_FUNCTIONS: JSON.stringify({ prepare: 'p', featurize: 'f', report: 'r', markFailed: 'm' }),
      TEXTSHIFT_REQUIRE_GPU: '1',
    });
    expect(env).toEqual({
      stores: { store: 's3://textshift-data', data: 's3://textshift-data/datasets' },
      costOptions: COST_OPTIONS,
      stageFunctions: { prepare: 'p', featurize: 'f', report: 'r', markFailed: 'm' },
      requireGpu: true,
    });
    // The data root folder is the bucket's datasets/ prefix of the object layout.
    expect(`${DATASETS_FOLDER}/`).toBe(PREFIXES.datasets);
  });

  it('TEXTSHIFT_STORE_URL wins over BUCKET; TEXTSHIFT_DATA_URL names another data root; empty means unset', () => {
    expect(readDeploymentEnv({ BUCKET: 'textshift-data', TEXTSHIFT_STORE_URL: 'file:///tmp/store/' }).stores).toEqual({
      store: 'file:///tmp/store/',
      data: 'file:///tmp/store/datasets',
    });
    expect(readDeploymentEnv({ TEXTSHIFT_STORE_URL: 's3://b/p', TEXTSHIFT_DATA_URL: '/data' }).stores).toEqual({ store: 's3://b/p', data: '/data' });
    expect(readDeploymentEnv({ BUCKET: '', TEXTSHIFT_STORE_URL: '', TEXTSHIFT_COST_OPTIONS: '', TEXTSHIFT_REQUIRE_GPU: '' })).toEqual({ requireGpu: false });
    expect(readDeploymentEnv({ RUN_ID: 'r1', FEATURE: 'bow', TEXTSHIFT_REQUIRE_GPU: '0' })).toEqual({ runId: 'r1', feature: 'bow', requireGpu: false });
    expect(readDeploymentEnv({ TEXTSHIFT_TF_BINDING: '.cache/tfjs-node/pkg' })).toEqual({ tfBinding: '.cache/tfjs-node/pkg', requireGpu: false });
  });

  it('names every malformed variable and what it expected, as a ConfigError', () => {
    const attempt = () =>
      readDeploymentEnv({
        BUCKET: 'Not_A_Bucket',
        TEXTSHIFT_COST_OPTIONS: '{"batchInstanceType": "g4dn.xlarge",',
        TEXTSHIFT_STAGE_FUNCTIONS: '{"prepare": "p"}',
        TEXTSHIFT_REQUIRE_GPU: 'yes',
      });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/^invalid deployment environment:\n/);
    expect(attempt).toThrow(/\n {2}BUCKET: expected an S3 bucket name/);
    expect(attempt).toThrow(/\n {2}TEXTSHIFT_COST_OPTIONS: expected JSON: /);
    expect(attempt).toThrow(/\n {2}TEXTSHIFT_STAGE_FUNCTIONS \(featurize\): /);
    expect(attempt).toThrow(/\n {2}TEXTSHIFT_REQUIRE_GPU: .*"0".*"1"/);
    const badMarket = { ...COST_OPTIONS, batchMarket: 'reserved', lambdaMemoryMb: { ...COST_OPTIONS.lambdaMemoryMb, report: 64 } };
    const market = () => readDeploymentEnv({ TEXTSHIFT_COST_OPTIONS: JSON.stringify(badMarket) });
    expect(market).toThrow(/TEXTSHIFT_COST_OPTIONS \(batchMarket\): .*"on-demand".*"spot"/);
    expect(market).toThrow(/TEXTSHIFT_COST_OPTIONS \(lambdaMemoryMb\.report\): .*128/);
  });

  it("Prepare's TEXTSHIFT_PLAN_DEPLOYMENT: pricing, concurrency, featurize timeout and cost limits as JSON; an inconsistent one names the field", () => {
    const planDeployment = {
      pricing: COST_OPTIONS, featurizeConcurrency: 10, featurizeTimeoutSeconds: 900, prepareTimeoutSeconds: 900, reportTimeoutSeconds: 900,
      trainerTimeoutMinutes: 240, trainerMemoryMiB: 14336, budget: { maxRunCostUsd: 25, maxRunCostCeilingUsd: 250 },
    };
    expect(readDeploymentEnv({ TEXTSHIFT_PLAN_DEPLOYMENT: JSON.stringify(planDeployment) })).toEqual({ planDeployment, requireGpu: false });
    const above = () => readDeploymentEnv({ TEXTSHIFT_PLAN_DEPLOYMENT: JSON.stringify({ ...planDeployment, budget: { maxRunCostUsd: 300, maxRunCostCeilingUsd: 250 } }) });
    expect(above).toThrow(ConfigError);
    expect(above).toThrow(/\n {2}TEXTSHIFT_PLAN_DEPLOYMENT \(budget\.maxRunCostUsd\): expected maxRunCostUsd <= maxRunCostCeilingUsd/);
    expect(() => readDeploymentEnv({ TEXTSHIFT_PLAN_DEPLOYMENT: JSON.stringify({ ...planDeployment, budget: { maxRunCostUsd: -1, maxRunCostCeilingUsd: 250 } }) })).toThrow(
      /TEXTSHIFT_PLAN_DEPLOYMENT \(budget\.maxRunCostUsd\): Too small/,
    );
    // A deployment's Prepare is also given the caps across runs.
    const spend = { maxConcurrentRuns: 4, maxDailyCostUsd: 500, maxRunHours: 48 };
    expect(readDeploymentEnv({ TEXTSHIFT_PLAN_DEPLOYMENT: JSON.stringify({ ...planDeployment, spend }) }).planDeployment).toEqual({ ...planDeployment, spend });
    expect(() => readDeploymentEnv({ TEXTSHIFT_PLAN_DEPLOYMENT: JSON.stringify({ ...planDeployment, spend: { ...spend, maxConcurrentRuns: 0 } }) })).toThrow(
      /TEXTSHIFT_PLAN_DEPLOYMENT \(spend\.maxConcurrentRuns\): Too small/,
    );
  });

  it('a stage without a store to work on: a ConfigError naming BUCKET and the alternative', () => {
    const missing = () => requireStores(readDeploymentEnv({}));
    expect(missing).toThrow(ConfigError);
    expect(missing).toThrow('environment variable BUCKET is not set: it must name the data bucket (or set TEXTSHIFT_STORE_URL to a store location)');
  });
});

describe('deploymentStageContext', () => {
  it('on AWS: S3 stores on the bucket and its datasets/ prefix, reached by the S3 rule (endpoint override -> path style)', async () => {
    const ctx = deploymentStageContext('run-a', { BUCKET: 'textshift-data', AWS_ENDPOINT_URL_S3: 'http://minio.internal:9000' });
    const [store, data] = [ctx.store as S3BlobStore, ctx.data as S3BlobStore];
    expect([store, data].every((s) => s instanceof S3BlobStore)).toBe(true);
    expect([store.url, data.url]).toEqual(['s3://textshift-data', 's3://textshift-data/datasets']);
    expect((await store.client.config.endpoint?.())?.hostname).toBe('minio.internal');
    expect(store.client.config.forcePathStyle).toBe(true);
  });

  it('keeps stores and memo while a warm container works on one run; a new run gets a fresh memo, other stores reopen', () => {
    const env = { TEXTSHIFT_STORE_URL: pathToFileURL(path.join(tmpdir(), 'textshift-ctx')).href };
    const first = deploymentStageContext('run-a', env);
    const again = deploymentStageContext('run-a', env);
    expect(again.store).toBe(first.store);
    expect(again.memo).toBe(first.memo);
    const otherRun = deploymentStageContext('run-b', env);
    expect(otherRun.store).toBe(first.store);
    expect(otherRun.memo).not.toBe(first.memo);
    const otherStore = deploymentStageContext('run-b', { TEXTSHIFT_STORE_URL: path.join(tmpdir(), 'textshift-ctx-2') });
    expect(otherStore.store).not.toBe(first.store);
    expect((otherStore.data as FsBlobStore).root).toBe(path.join(tmpdir(), 'textshift-ctx-2', 'datasets'));
  });

  it('without BUCKET or TEXTSHIFT_STORE_URL: the ConfigError naming them', () => {
    expect(() => deploymentStageContext('run-a', {})).toThrow(/^environment variable BUCKET is not set/);
  });
});

describe('the contract is the only place that spells a deployment variable', () => {
  /** Every .ts file under a folder of the repository. */
  const sources = (folder: string): string[] =>
    readdirSync(path.join(ROOT, folder), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => path.join(folder, f));

  it('no variable name spelled out in cdk/, functions/ or the trainer entry', () => {
    const names = Object.values(DEPLOYMENT_ENV);
    // A quoted name, an object key or a property read (`process.env.BUCKET`).
    const quoted = new RegExp(`['"\`](${names.join('|')})['"\`]|\\b(${names.join('|')}):|\\.(${names.join('|')})\\b`);
    const offenders = ['cdk', 'functions', 'containers/trainer/src']
      .flatMap(sources)
      .filter((file) => quoted.test(readFileSync(path.join(ROOT, file), 'utf8')));
    expect(offenders).toEqual([]);
    // The check can see one: the contract itself spells them.
    expect(quoted.test(readFileSync(path.join(ROOT, 'src/config/deployment-env.ts'), 'utf8'))).toBe(true);
  });
});
