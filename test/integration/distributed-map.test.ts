// The Featurize Distributed Map at scale, in the emulator's own Step Functions: the real Prepare plans 100,000 shards
// of a dataset in the emulator's S3, and its plan goes through the synthesized state; neither the state payload nor
// the parent execution's history grows with it.
//
// What runs, and what stands in:
//   - Prepare is the stage function itself (in this process, as its Lambda runs it) against the emulator's S3: it
//     reads a generated dataset of 10 rows per shard (1,000,000 rows for 100,000 shards, at the schema's minimum
//     shardSize of 10), splits it, and writes every shard task (each carrying its texts) and the plan, in at most
//     1,000 batches (100,000 shards: 1,000 batches of 100), one child execution per batch. Its time is printed (it is
//     measured, not asserted: see the README's Benchmarks).
//   - The definition is the synthesized one, built by the stack's own builder with WorkflowProps.noOpItems: a child
//     execution handles its batch with a Pass state (a no-op shard handler: the emulator cannot run Lambda) instead
//     of featurizing each shard in turn, because LocalStack runs a few hundred states a second at best: 100,000
//     shard states would take ten minutes or more. Everything else is the deployed state: the ItemReader on the S3
//     plan, the ItemSelector, MaxConcurrency, STANDARD child executions and the ResultWriter.
//   - The parent is the Featurize state alone (made the whole machine: End instead of Next, its Catch dropped, as its
//     failure path's Lambda cannot run here). Its input is what Prepare's ResultSelector leaves in the state. The
//     other states of the run do not depend on the shard count (the unit tests run the whole definition).
//   - One LocalStack 4.14 defect is worked around: it resolves the ResultWriter's `Prefix.$` against the Map's
//     result (the children's outputs) instead of the state's input, and fails the execution. Each run's machine
//     therefore gets its results prefix as a literal `Prefix`, the value `Prefix.$` names in that run's input.
// Emulator-backed: Prepare's reads and writes, ItemReader, ItemBatcher, ResultWriter and child executions as
// LocalStack 4.14 runs them; the parent's history and the children's inputs as it records them. Documentation-backed:
// the 256 KiB payload and 25,000-event history limits of AWS Step Functions, which the emulator does not enforce
// (hence the measurements).
import { randomBytes } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import {
  CreateStateMachineCommand,
  DeleteStateMachineCommand,
  DescribeExecutionCommand,
  DescribeMapRunCommand,
  type HistoryEvent,
  StartExecutionCommand,
  paginateGetExecutionHistory,
} from '@aws-sdk/client-sfn';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKeys } from '../../src/run/keys.js';
import type { ShardTask } from '../../src/run/records.js';
import { silentReporter } from '../../src/run/reporter.js';
import { S3BlobStore } from '../../src/store/s3-store.js';
import { prepare } from '../../src/workflow/stages/prepare.js';
import { testDeployment } from '../support/deployment.js';
import { SYNTH_TIMEOUT } from '../support/cdk-template.js';
import { awsClientConfig, createTestBucket, onRealAws } from './setup/aws.js';
import { type Json, onlyResource, resolve, resourcesOfType } from './support/cfn.js';
import { targetClients } from './support/clients.js';
import { synthesizeStack } from './support/deploy.js';
import { waitFor } from './support/executions.js';

const SKIP = onRealAws();
if (SKIP) console.log('[integration] distributed-map.test.ts skipped on real AWS: it deploys a test variant of the definition (no-op shard task)');

/** Child executions at once (the featurizeConcurrency setting of the variant's deployment). */
const CONCURRENCY = 100;
const SMALL = 1_000;
const LARGE = 100_000;
/** The payload bound to show: far below Step Functions' 256 KiB state limit (documentation-backed). */
const PAYLOAD_LIMIT = 32 * 1024;
/** Rows per shard: the schema's smallest shardSize, so the fewest rows make the most shards. */
const SHARD_ROWS = 10;

/**
 * An experiment whose one BoW family plans `shards` shards of SHARD_ROWS rows over dataset `a` (a generated TSV of
 * `shards * SHARD_ROWS` rows) split 80/20 into rest/test and the rest 80/20 into train/val: at 1,000 and 100,000 shards every
 * part is a multiple of 10 rows (10,000 rows: 6,400/1,600/2,000).
 */
function plannedExperiment(name: string, path: string) {
  return {
    name,
    datasets: {
      a: {
        files: { full: { path, format: 'tsv', text: 0, label: 1 } },
        labels: { '0': 0, '1': 1 },
        classNames: ['neg', 'pos'],
        splits: [
          { from: 'full', testSize: 0.2, train: 'rest', test: 'test' },
          { from: 'rest', testSize: 0.2, train: 'train', test: 'val' },
        ],
      },
    },
    features: { bow: { kind: 'bow', maxFeatures: 100, fitOn: { dataset: 'a', split: 'train' }, shardSize: SHARD_ROWS } },
    stages: [{ name: '1', dataset: 'a' }],
    evaluation: { datasets: ['a'] },
  };
}

interface MapRun {
  shards: number;
  /** Prepare's wall time, seconds. */
  prepareSeconds: number;
  /** Shard task objects under the run's shards/ prefix after Prepare, and one of them. */
  storedShards: number;
  sampleTask: ShardTask;
  batches: number;
  seconds: number;
  status: string | undefined;
  /** The parent execution's history, every event. */
  events: HistoryEvent[];
  /** The largest input or output the parent's history records, in bytes. */
  largestParentPayload: number;
  /**
   * The child executions' inputs: the ItemSelector ({runId, shardKeys: <its batch>}) applied to each batch of the
   * plan. Computed here, not read back: LocalStack 4.14 neither lists a Map Run's children (ListExecutions with a
   * mapRunArn fails) nor writes the ResultWriter's result files (only its manifest).
   */
  childInputs: string[];
  /** The Map Run's counts of child executions (DescribeMapRun). */
  executionCounts: { succeeded?: number; total?: number };
  /** The ResultWriter's manifest (`<prefix>/<map run id>/manifest.json`). */
  resultManifest: { DestinationBucket?: string; MapRunArn?: string };
}

/** Every input and output a history event carries, as recorded. */
function payloadsOf(e: HistoryEvent): string[] {
  const details = Object.values(e).filter((v): v is Record<string, unknown> => v !== null && typeof v === 'object' && !(v instanceof Date));
  return details.flatMap((d) => [d.input, d.output].filter((p): p is string => typeof p === 'string'));
}

describe.skipIf(SKIP)('Distributed Map at 100,000 shards: the synthesized Featurize state in the emulator\'s Step Functions (no-op shard task)', () => {
  const clients = targetClients();
  let bucket: string;
  let removeBucket: () => Promise<void>;
  let account: string;
  let featurizeState: Record<string, Json>;
  const machines: string[] = [];
  const runs = new Map<number, MapRun>();

  /** Prepares a run planning `shards` shards with the real Prepare, runs the Featurize state on its plan, and reads what it left. */
  async function runMap(shards: number): Promise<MapRun> {
    const runId = `dmap-it-${randomBytes(4).toString('hex')}-${shards}`;
    const keys = runKeys(runId);
    const store = new S3BlobStore({ bucket, client: clients.s3 });
    const data = new S3BlobStore({ bucket, prefix: 'datasets', client: clients.s3 });
    const rows = Array.from({ length: shards * SHARD_ROWS }, (_, i) => `${i % 2 ? 'good fine' : 'bad poor'} review ${i}\t${i % 2}\n`);
    await data.put(`${runId}.tsv`, rows.join(''));
    await store.put(`experiments/${runId}.json`, JSON.stringify(plannedExperiment(runId, `${runId}.tsv`)));
    const prepared = Date.now();
    const { shardPlan } = await prepare({ store, data, reporter: silentReporter }, { experimentKey: `experiments/${runId}.json`, runId }, { deployment: await testDeployment() });
    const prepareSeconds = (Date.now() - prepared) / 1000;
    const stored = await store.list(keys.shardsPrefix);
    const sampleTask = JSON.parse((await store.getOrThrow(stored[stored.length - 1]!.key)).toString('utf8')) as ShardTask;
    const resultWriter = featurizeState.ResultWriter as { Resource: string; Parameters: Record<string, Json> };
    const writerParameters: Record<string, Json> = { ...resultWriter.Parameters, Prefix: shardPlan.resultsPrefix };
    delete writerParameters['Prefix.$'];
    const state = { ...featurizeState, ResultWriter: { ...resultWriter, Parameters: writerParameters }, End: true };
    const { stateMachineArn } = await clients.sfn.send(
      new CreateStateMachineCommand({
        name: `${runId}-featurize`,
        definition: JSON.stringify({ StartAt: 'Featurize', States: { Featurize: state } }),
        roleArn: `arn:aws:iam::${account}:role/featurize-map-test`,
        type: 'STANDARD',
      }),
    );
    machines.push(stateMachineArn!);
    const started = Date.now();
    const { executionArn } = await clients.sfn.send(
      new StartExecutionCommand({ stateMachineArn, name: runId, input: JSON.stringify({ runId, shardPlan, features: ['bow'] }) }),
    );
    let status: string | undefined;
    await waitFor(
      `the Featurize map over ${shards} shards`,
      async () => {
        status = (await clients.sfn.send(new DescribeExecutionCommand({ executionArn }))).status;
        return status === 'RUNNING' ? undefined : status;
      },
      { timeoutMs: 900_000, intervalMs: 1000, describe: () => String(status) },
    );
    const seconds = (Date.now() - started) / 1000;
    const events: HistoryEvent[] = [];
    for await (const page of paginateGetExecutionHistory({ client: clients.sfn }, { executionArn, includeExecutionData: true })) events.push(...(page.events ?? []));

    const listed = await clients.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${shardPlan.resultsPrefix}/` }));
    const manifestKey = (listed.Contents ?? []).map((o) => o.Key!).find((k) => k.endsWith('/manifest.json'));
    const read = async (key: string) => (await (await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString());
    const resultManifest = manifestKey ? (JSON.parse(await read(manifestKey)) as MapRun['resultManifest']) : {};
    const mapRunArn = events.find((e) => e.type === 'MapRunStarted')?.mapRunStartedEventDetails?.mapRunArn;
    const executionCounts = mapRunArn ? ((await clients.sfn.send(new DescribeMapRunCommand({ mapRunArn }))).executionCounts ?? {}) : {};
    const plan = JSON.parse(await read(shardPlan.key)) as string[][];
    const childInputs = plan.map((batch) => JSON.stringify({ runId, shardKeys: batch }));
    const largestParentPayload = Math.max(0, ...events.flatMap(payloadsOf).map((p) => Buffer.byteLength(p)));
    return { shards, prepareSeconds, storedShards: stored.length, sampleTask, batches: shardPlan.batches, seconds, status, events, largestParentPayload, childInputs, executionCounts, resultManifest };
  }

  beforeAll(async () => {
    ({ bucket, remove: removeBucket } = await createTestBucket(clients.s3));
    const stack = synthesizeStack({ featurizeConcurrency: CONCURRENCY }, { noOpItems: true });
    const { Account } = await clients.sts.send(new GetCallerIdentityCommand({}));
    account = Account!;
    const [bucketId] = resourcesOfType(stack.template, 'AWS::S3::Bucket').find(([, b]) => JSON.stringify(b.Properties?.NotificationConfiguration ?? {}).includes('EventBridgeEnabled'))!;
    const ctx = { account: Account!, region: awsClientConfig().region, resources: new Map([[bucketId, { ref: bucket, attrs: { Arn: `arn:aws:s3:::${bucket}` } }]]) };
    const [, machine] = onlyResource(stack.template, 'AWS::StepFunctions::StateMachine');
    const definition = JSON.parse(resolve(stack.template, ctx, machine.Properties!.DefinitionString!) as string) as { States: Record<string, Record<string, Json>> };
    const featurize = { ...definition.States.Featurize! };
    delete featurize.Next;
    delete featurize.Catch;
    featurizeState = featurize;
    for (const shards of [SMALL, LARGE]) {
      const run = await runMap(shards);
      runs.set(shards, run);
      console.log(
        `[distributed-map] ${shards} shards: Prepare ${run.prepareSeconds.toFixed(1)} s; map ${run.status} in ${run.seconds.toFixed(1)} s, ${run.childInputs.length} child executions (${run.batches} batches), ` +
          `parent history ${run.events.length} events, largest parent payload ${run.largestParentPayload} B, ` +
          `largest child input ${Math.max(...run.childInputs.map((i) => Buffer.byteLength(i)))} B`,
      );
    }
  }, SYNTH_TIMEOUT + 1_200_000);

  afterAll(async () => {
    for (const stateMachineArn of machines) await clients.sfn.send(new DeleteStateMachineCommand({ stateMachineArn }));
    await removeBucket?.();
    clients.destroy();
  });

  it('is the synthesized Featurize state with only the batch handler swapped for a no-op', () => {
    const processor = featurizeState.ItemProcessor as { ProcessorConfig: Json; StartAt: string; States: Record<string, Record<string, Json>> };
    expect(processor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
    expect(processor.StartAt).toBe('Featurize batch');
    expect(Object.keys(processor.States)).toEqual(['Featurize batch']);
    expect(processor.States['Featurize batch']).toMatchObject({ Type: 'Pass', End: true });
    expect(featurizeState.ItemSelector).toEqual({ 'runId.$': '$.runId', 'shardKeys.$': '$$.Map.Item.Value', 'execution.$': '$$.Execution.Id' });
    expect(featurizeState.MaxConcurrency).toBe(CONCURRENCY);
    expect(featurizeState.ItemReader).toEqual({
      Resource: 'arn:aws:states:::s3:getObject',
      ReaderConfig: { InputType: 'JSON' },
      Parameters: { Bucket: bucket, 'Key.$': '$.shardPlan.key' },
    });
    expect(featurizeState.ResultWriter).toEqual({ Resource: 'arn:aws:states:::s3:putObject', Parameters: { Bucket: bucket, 'Prefix.$': '$.shardPlan.resultsPrefix' } });
  });

  it("Prepare stores every shard task of its plan, each with its rows' texts", () => {
    for (const run of runs.values()) {
      expect(run.storedShards, `${run.shards} shards`).toBe(run.shards);
      expect(run.sampleTask.rows).toHaveLength(SHARD_ROWS);
      expect(run.sampleTask.texts).toHaveLength(SHARD_ROWS);
      expect(run.sampleTask.texts!.every((t) => /^(good fine|bad poor) review \d+$/.test(t))).toBe(true);
    }
  });

  it('runs every shard of a 100,000-shard plan: each in exactly one child execution, with its run id', () => {
    for (const run of runs.values()) {
      expect(run.status, `${run.shards} shards`).toBe('SUCCEEDED');
      // At most 1,000 child executions: one per shard at 1,000 shards, one per 100 shards at 100,000.
      expect(run.batches).toBe(1000);
      expect(run.executionCounts).toMatchObject({ succeeded: run.batches, total: run.batches });
      expect(run.childInputs).toHaveLength(run.batches);
      // The ResultWriter wrote the Map Run's manifest under the run's results prefix.
      expect(run.resultManifest).toMatchObject({ DestinationBucket: bucket, MapRunArn: expect.stringContaining(':mapRun:') });
      const children = run.childInputs.map((input) => JSON.parse(input) as { runId: string; shardKeys: string[] });
      const shardKeys = children.flatMap((c) => c.shardKeys);
      expect(shardKeys).toHaveLength(run.shards);
      expect(new Set(shardKeys).size).toBe(run.shards);
      const runId = children[0]!.runId;
      expect(children.every((c) => c.runId === runId && c.shardKeys.every((k) => k.startsWith(`runs/${runId}/shards/bow/a/`)))).toBe(true);
    }
  });

  it('keeps every state payload under 32 KiB: the parent\'s (recorded) and each child execution\'s input (its batch)', () => {
    for (const run of runs.values()) {
      expect(run.largestParentPayload, `${run.shards} shards: parent`).toBeLessThan(PAYLOAD_LIMIT);
      expect(Math.max(...run.childInputs.map((i) => Buffer.byteLength(i))), `${run.shards} shards: children`).toBeLessThan(PAYLOAD_LIMIT);
    }
    // The parent's payloads do not grow with the shard count at all: only keys and counts travel.
    expect(runs.get(LARGE)!.largestParentPayload - runs.get(SMALL)!.largestParentPayload).toBeLessThan(16);
  });

  it('records the same parent history for 1,000 and 100,000 shards: the children have histories of their own', () => {
    const types = (run: MapRun) => run.events.map((e) => e.type);
    expect(types(runs.get(LARGE)!)).toEqual(types(runs.get(SMALL)!));
    expect(runs.get(LARGE)!.events.length).toBeLessThan(20);
  });
});
