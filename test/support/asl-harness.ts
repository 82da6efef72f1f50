/**
 * The synthesized state machine definition executed by an ASL interpreter (aws-local-stepfunctions), with task
 * stand-ins: the harness of the definition's routing, naming, retry and failure-path tests. `useDefinition` sets
 * the definition the harness runs (the test's synthesized one).
 */
import { expect } from 'vitest';
import { inBatches } from '../../src/run/graph.js';
import { EXPERIMENT_NAME_CHARACTERS } from '../../src/run/keys.js';
import type { AslDefinition, AslState } from './cdk-template.js';
import { type AslStates, runDistributedMap, standInDistributedMaps } from './distributed-map.js';

// aws-local-stepfunctions targets Node >= 22; Node 20 lacks Promise.withResolvers, which it uses.
const P = Promise as unknown as { withResolvers?: () => unknown };
P.withResolvers ??= () => {
  let resolve!: (v: unknown) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise((a, b) => ((resolve = a), (reject = b)));
  return { promise, resolve, reject };
};
const { StateMachine } = await import('aws-local-stepfunctions');

// aws-local-stepfunctions runs States.StringSplit as JavaScript's split on the whole second argument, keeping empty
// parts; Step Functions splits at any one of its characters and drops empty parts (as LocalStack, whose tests are
// validated against AWS, does too). The intake splits an experiment key at every character a file name may use; that
// one splitter is split as Step Functions would, every other split keeps JavaScript's behaviour.
const INTAKE_SPLITTER = `${EXPERIMENT_NAME_CHARACTERS}/`;
const jsSplit = String.prototype.split;
String.prototype.split = function (this: string, separator: unknown, limit?: number): string[] {
  if (separator !== INTAKE_SPLITTER) return Reflect.apply(jsSplit, this, [separator, limit]) as string[];
  const parts = [''];
  for (const c of this) {
    if (INTAKE_SPLITTER.includes(c)) parts.push('');
    else parts[parts.length - 1] += c;
  }
  return parts.filter((part) => part !== '');
} as typeof String.prototype.split;

let asl: AslDefinition;
/** Sets the definition `execute` and `redrive` run by default. */
export function useDefinition(definition: AslDefinition): void {
  asl = definition;
}

/** The stages of the run, whose failure paths have a "MarkFailed <stage>" task. */
export const RUN_STAGES = ['Prepare', 'Featurize', 'Train', 'Report'];
/** Every state with its name, top level and inside Map item processors. */
export const allStates = (states: Record<string, AslState> = asl.States): [string, AslState][] =>
  Object.entries(states).flatMap(([name, st]) => [[name, st] as [string, AslState], ...allStates(st.ItemProcessor?.States ?? {})]);
// ---------------------------------------------------------------------------------------------------------------
// The synthesized definition executed by an ASL interpreter. Task states are replaced by stand-ins that record
// their input and answer like the service would; this tests the routing, naming and error paths of the
// definition itself. The real handlers run against it in the integration tests. The interpreter does not execute a
// Distributed Map: the harness's stand-in (test/support/distributed-map.ts) runs it, reading the shard plan from
// the plans the Prepare stand-in "wrote" (PLANS) and running each shard as a child execution of its own.

export type Json = ReturnType<typeof JSON.parse>;
export type Handlers = Record<string, (input: Json, attempt: number) => Json>;
export interface Call {
  state: string;
  input: Json;
}
export type Event = { type: string; index?: number; state?: { name: string; type: string; input: Json } };
export interface Executed {
  output: Json;
  calls: Call[];
  error: Error | undefined;
  events: Event[];
  executionName: string;
  /** The child executions its Distributed Maps ran, in the order they were started, each with its map's state name. */
  children: (Executed & { mapState: string; processor: AslStates })[];
}

export const ARN = (name: string) => `arn:aws:states:eu-west-1:123456789012:execution:textshift-run:${name}`;

/** Shard plans the Prepare stand-ins "wrote to S3", by key: what the Distributed Map stand-in reads. */
export const PLANS = new Map<string, string[][]>();
/** A Prepare stand-in's shard plan: stored in PLANS, and only its key and count returned, as Prepare does. */
export const planOf = (runId: string, shardKeys: string[]) => {
  const key = `runs/${runId}/shards.json`;
  const batches = inBatches(shardKeys);
  PLANS.set(key, batches);
  return { key, count: shardKeys.length, batches: batches.length, resultsPrefix: `runs/${runId}/featurize-map` };
};

export interface ExecuteOptions {
  definition?: AslStates;
  redriveCount?: number;
  /** Shared by an execution and its children: calls in the order made, and attempts per handler. */
  calls?: Call[];
  attempts?: Map<string, number>;
}

/** Runs `definition` (default: the synthesized one) with task stand-ins; records task calls and the event log. */
export async function execute(input: Json, handlers: Handlers, executionName = 'exec-1', o: ExecuteOptions = {}): Promise<Executed> {
  const { definition = asl, redriveCount = 0, calls = [], attempts = new Map<string, number>() } = o;
  const wrapped: Record<string, (i: Json) => Promise<Json>> = Object.fromEntries(
    Object.entries(handlers).map(([name, fn]) => [
      name,
      async (i: Json) => {
        calls.push({ state: name, input: i });
        const n = (attempts.get(name) ?? 0) + 1;
        attempts.set(name, n);
        return fn(i, n);
      },
    ]),
  );
  const children: Executed['children'] = [];
  const { definition: runnable, maps } = standInDistributedMaps(definition);
  for (const [mapState, mapDefinition] of maps) {
    wrapped[mapState] = (i: Json) =>
      runDistributedMap(mapState, mapDefinition, i, {
        readItems: async (_bucket, key) => {
          const items = PLANS.get(key);
          if (!items) throw new Error(`NoSuchKey: ${key}`);
          return items;
        },
        runChild: async (_map, processor, childInput, index) => {
          const child = await execute(childInput, handlers, `${executionName}/${mapState}:${index}`, { definition: processor, calls, attempts });
          children.push({ ...child, mapState, processor });
          return child.error ? { error: failure(child.error) } : {};
        },
        executionArn: ARN(executionName),
      });
  }
  // A redrive or a child starts inside the definition, which leaves states unreachable; the whole was validated already.
  const validationOptions = definition === asl ? { checkArn: false } : { noValidate: true };
  const machine = new StateMachine(runnable as never, { validationOptions });
  const retryIntervalOverrides = Object.fromEntries(allStates().filter(([, st]) => st.Type === 'Task').map(([n]) => [n, 0]));
  const run = machine.run(input, {
    overrides: { taskResourceLocalHandlers: wrapped, retryIntervalOverrides },
    context: { Execution: { Id: ARN(executionName), Name: executionName, RedriveCount: redriveCount } } as never,
  });
  const events: Event[] = [];
  const logged = (async () => {
    for await (const e of run.eventLogs) events.push(e as Event);
  })();
  let output: Json;
  let error: Error | undefined;
  try {
    output = await run.result;
  } catch (err) {
    error = err as Error;
  }
  await logged;
  return { output, calls, error, events, executionName, children };
}

/** The state each execution (index undefined) or Map iteration (its index) was in when it stopped, if it had not finished. */
export function stoppedIn(events: Event[], where: (e: Event) => boolean): Map<number | undefined, { name: string; input: Json }> {
  const last = new Map<number | undefined, Event>();
  for (const e of events) if ((e.type === 'StateEntered' || e.type === 'StateExited') && where(e)) last.set(e.index, e);
  const open = new Map<number | undefined, { name: string; input: Json }>();
  for (const [index, e] of last) if (e.type === 'StateEntered') open.set(index, e.state!);
  return open;
}

/**
 * Redrives a failed execution as Step Functions documents RedriveExecution: it continues from the state the
 * execution failed in, with that state's input; of an inline Map only the failed or aborted iterations run
 * again, each from the state it stopped in; of a Distributed Map the Map Run is redriven, which redrives only its
 * failed child executions (each from the state it stopped in, its own redrive count going up); states that
 * succeeded are not re-run; $$.Execution.RedriveCount goes up by one. Returns the calls of the redrive only.
 */
export async function redrive(failed: Executed, handlers: Handlers, definition: AslStates = asl, calls: Call[] = []): Promise<Executed> {
  const redriveCount = 1;
  const stopped = stoppedIn(failed.events, (e) => e.index === undefined).get(undefined);
  if (!stopped) throw new Error('the execution did not fail in a state: nothing to redrive');
  let continueAt: string | undefined = stopped.name;
  const input = stopped.input;
  const map = definition.States[stopped.name] as AslState;
  if (map.Type === 'Map') {
    const processor = map.ItemProcessor!;
    if (processor.ProcessorConfig?.Mode === 'DISTRIBUTED') {
      // The Map Run is redriven: each failed child execution is redriven in turn (itself, as an execution).
      for (const child of failed.children.filter((c) => c.mapState === stopped.name && c.error)) {
        const again = await redrive(child, handlers, child.processor, calls);
        if (again.error) return { ...again, calls };
      }
    } else {
      const iterations = stoppedIn(failed.events, (e) => e.index !== undefined && e.state!.name in processor.States);
      for (const it of iterations.values()) {
        const again = await execute(it.input, handlers, failed.executionName, { definition: { StartAt: it.name, States: processor.States }, redriveCount, calls });
        if (again.error) return { ...again, calls };
      }
    }
    // The Map's own output is its input (ResultPath null), so the execution goes on from its Next with that.
    expect(map.ResultPath).toBeNull();
    continueAt = map.Next;
  }
  if (continueAt === undefined) return { output: input, calls, error: undefined, events: [], executionName: failed.executionName, children: [] };
  const rest = await execute(input, handlers, failed.executionName, { definition: { ...definition, StartAt: continueAt }, redriveCount, calls });
  return { ...rest, calls };
}

export const markFailedStandIn = (i: Json) => {
  const p = i.Payload;
  if (p.redriveCount > p.failedAtRedrive) return { Payload: { runId: p.runId, stage: p.stage, resumed: true } };
  throw fail('RunFailed', `${p.stage} failed: ${p.error.Error} (run ${p.runId}; fix the cause, then redrive the execution to resume)`);
};

/** Stand-ins answering like Lambda (`{Payload}`) and Batch (`{JobId, Status}`) for a two-shard, two-family run. */
export const succeeding: Handlers = {
  Prepare: (i: Json) => ({ Payload: { runId: i.Payload.prepareInput.runId, shardPlan: planOf(i.Payload.prepareInput.runId, ['s/0.json', 's/1.json']), features: ['bow', 'bert'] } }),
  'Featurize shard': (i: Json) => ({ Payload: { shardKey: i.Payload.shardKey, cacheKey: 'cache/features/x.csr', cached: false } }),
  'Train feature family': () => ({ JobId: 'job-1', Status: 'SUCCEEDED' }),
  Report: (i: Json) => ({
    Payload: {
      runId: i.Payload.runId,
      resultsKey: `runs/${i.Payload.runId}/report/results.json`,
      reportKey: `runs/${i.Payload.runId}/report/report.html`,
      costKey: `runs/${i.Payload.runId}/report/cost.json`,
      archiveKey: `runs/${i.Payload.runId}/checkpoints.zip`,
    },
  }),
  ...Object.fromEntries(RUN_STAGES.map((stage) => [`MarkFailed ${stage}`, markFailedStandIn])),
};
/** The Error and Cause the execution failed with (the interpreter wraps them in an ExecutionError). */
export const failure = (error: Error | undefined) => {
  const cause = error?.cause as Error | undefined;
  return { Error: cause?.name, Cause: cause?.message };
};
export const fail = (name: string, message: string) => Object.assign(new Error(message), { name });
