// A run reads the inputs it started with. The synthesized definition runs as in workflow.test.ts (aws-local-stepfunctions,
// handlers in-process, the trainer as a local process) on a versioned bucket in the emulator, as deployed. While a run is
// under way its experiment file is uploaded again with another config, Prepare fails halfway (after pinning its inputs),
// a dataset file is replaced, and Prepare is retried; afterwards the run is resumed with the edits still in place. The
// run must have exactly the config, pins and splits of the upload as Prepare makes them from the untouched bucket.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Manifest } from '../../src/run/manifest.js';
import type { Results } from '../../src/run/records.js';
import { silentReporter } from '../../src/run/reporter.js';
import { S3BlobStore } from '../../src/store/s3-store.js';
import { prepare } from '../../src/workflow/stages/prepare.js';
import { SYNTH_TIMEOUT } from '../support/cdk-template.js';
import { dataFile } from '../support/data.js';
import { onRealAws } from './setup/aws.js';
import { targetClients } from './support/clients.js';
import { type SynthesizedStack, synthesizeStack } from './support/deploy.js';
import { type LocalRunBed, localRunBed } from './support/local-run-bed.js';
import type { LocalExecution } from './support/local-workflow.js';
import { TINY_EXPERIMENT } from './support/run-inputs.js';
import { type S3FaultProxy, s3FaultProxy } from './support/s3-fault-proxy.js';
import { testDeployment } from '../support/deployment.js';

const target = inject('awsEmulator');
const SKIP = onRealAws();
if (SKIP) console.log('[integration] pinned-inputs.test.ts skipped on real AWS: it runs the Lambda handlers in-process and the trainer as a local process against an emulator');

const RUN_TIMEOUT = 120_000;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe.skipIf(SKIP)(`a run keeps the experiment and data versions it started with (versioned bucket in ${target}, definition in aws-local-stepfunctions)`, () => {
  const clients = targetClients();
  let bed: LocalRunBed;
  let cpu: SynthesizedStack;
  let proxy: S3FaultProxy;
  /** Versions of the inputs as uploaded. */
  let experimentVersion = '';
  let testSetVersion = '';
  const suffix = randomBytes(4).toString('hex');
  const reference = `tiny-pin-ref-${suffix}`;
  const edited = `tiny-pin-${suffix}`;
  let editedRun: LocalExecution;

  const readJson = async <T>(key: string) => JSON.parse((await bed.store.getOrThrow(key)).toString('utf8')) as T;
  const put = (key: string, body: string | Buffer) => clients.s3.send(new PutObjectCommand({ Bucket: bed.bucket, Key: key, Body: body }));
  /** The run's split files by name (without the run prefix) and the sha256 of their bytes. */
  async function splits(runId: string): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const { key } of await bed.store.list(`runs/${runId}/splits/`)) out[key.slice(`runs/${runId}/`.length)] = sha256(await bed.store.getOrThrow(key));
    return out;
  }
  const prepareCalls = (e: LocalExecution) => e.lambdaCalls.filter((c) => c.fn === 'prepare');

  beforeAll(async () => {
    bed = await localRunBed(clients);
    cpu = synthesizeStack({ trainerCompute: 'cpu' });
    proxy = await s3FaultProxy(inject('awsEndpoint'));
    experimentVersion = (await bed.store.head(bed.experimentKey))!.version!;
    testSetVersion = (await bed.store.head('datasets/sst2/test.tsv'))!.version!;
  }, SYNTH_TIMEOUT);

  afterAll(async () => {
    await proxy?.close();
    await bed?.dispose();
    clients.destroy();
  });

  it('the reference: Prepare of the upload on the untouched bucket (the stage function, in this process)', async () => {
    const data = new S3BlobStore({ bucket: bed.bucket, prefix: 'datasets', client: clients.s3 });
    const plan = await prepare({ store: bed.store, data, reporter: silentReporter }, { experimentKey: bed.experimentKey, experimentVersion, runId: reference, quick: true }, { deployment: await testDeployment() });
    expect(plan.shardPlan.count).toBe(6);
  });

  it('a second upload before Prepare, a Prepare failing halfway, a dataset replaced before its retry: the run reads the first upload and the original data', async () => {
    // Another config (a wider model, other caps) and a test set cut to 100 rows.
    const tiny = JSON.parse(readFileSync(TINY_EXPERIMENT, 'utf8')) as { model: { hidden: number[] }; quick: Record<string, Record<string, number>> };
    const secondUpload = JSON.stringify({ ...tiny, model: { ...tiny.model, hidden: [16] }, quick: { ...tiny.quick, sst2: { train: 100, val: 50, test: 50 } } });
    const cutTestSet = readFileSync(dataFile('sst2/test.tsv'), 'utf8').split('\n').slice(0, 100).join('\n') + '\n';
    let attempt = 0;
    editedRun = await bed.workflow(cpu, undefined, proxy.endpoint).execute(
      { experimentKey: bed.experimentKey, uploadId: experimentVersion, experimentVersion, runId: edited, quick: true },
      edited,
      async (call, invoke) => {
        if (call.fn !== 'prepare') return invoke();
        attempt += 1;
        if (attempt === 1) {
          // The same key uploaded again right after the upload that started this run.
          await put(bed.experimentKey, secondUpload);
          // S3 fails the first split write (after the manifest and the input pins are written): Prepare stops halfway.
          proxy.fail((method, path) => method === 'PUT' && path.includes(`/runs/${edited}/splits/`));
          try {
            return await invoke();
          } finally {
            proxy.fail(undefined);
          }
        }
        await put('datasets/sst2/test.tsv', cutTestSet);
        return invoke();
      },
    );

    expect(editedRun.error).toBeUndefined();
    expect(editedRun.status).toBe('SUCCEEDED');
    expect(proxy.failed()).toBeGreaterThan(0);
    expect(prepareCalls(editedRun).map((c) => c.error?.split(':')[0] ?? 'ok')).toEqual(['TransientError', 'ok']);
    expect(editedRun.retried).toEqual(['Prepare']);
    // The edits are really there: the bucket's current objects are the new ones.
    expect((await bed.store.head(bed.experimentKey))!.version).not.toBe(experimentVersion);
    expect((await bed.store.head('datasets/sst2/test.tsv'))!.version).not.toBe(testSetVersion);

    const [ref, run] = [await readJson<Manifest>(`runs/${reference}/manifest.json`), await readJson<Manifest>(`runs/${edited}/manifest.json`)];
    expect(run.experiment).toEqual(ref.experiment);
    expect(run.experiment.version).toBe(experimentVersion);
    expect(run.config).toEqual(ref.config);
    expect(run.config.model.hidden).toEqual([64, 32]);
    expect(run.pinned?.['sst2/test.tsv']).toMatchObject({ version: testSetVersion });
    expect(run.pinned).toEqual(ref.pinned);
    expect(run.inputs).toEqual(ref.inputs);
    expect(run.inputs.sst2!.find((f) => f.key === 'sst2/test.tsv')).toMatchObject({ rows: 1821, version: testSetVersion, etag: expect.any(String) });
    expect(run.splits).toEqual(ref.splits);
    expect(await splits(edited)).toEqual(await splits(reference));
    // Trained and evaluated on them: the first upload's caps (300 test rows each), not the second's (50).
    const results = await readJson<Results>(`runs/${edited}/report/results.json`);
    expect(results.evaluations.map((e) => [e.model, e.dataset, e.n])).toEqual([
      ['bow_1', 'sst2', 300],
      ['bow_1', 'imdb', 300],
      ['bow_2', 'sst2', 300],
      ['bow_2', 'imdb', 300],
    ]);
  }, RUN_TIMEOUT);

  it('resumed from the console with the edits still in place, the run reads its pinned versions: unchanged', async () => {
    const resumed = await bed.workflow(cpu).execute({ experiment: bed.experimentKey, runId: edited }, `resume-${edited}`);
    expect(resumed.error).toBeUndefined();
    expect(resumed.status).toBe('SUCCEEDED');
    expect(prepareCalls(resumed).map((c) => c.result)).toEqual([prepareCalls(editedRun).at(-1)!.result]);
    for (const c of resumed.lambdaCalls.filter((x) => x.fn === 'featurize')) expect(c.result).toMatchObject({ cached: true });
    const manifest = await readJson<Manifest>(`runs/${edited}/manifest.json`);
    expect(manifest.experiment.version).toBe(experimentVersion);
    expect(manifest.config).toEqual((await readJson<Manifest>(`runs/${reference}/manifest.json`)).config);
    expect(await splits(edited)).toEqual(await splits(reference));
  }, RUN_TIMEOUT);
});
