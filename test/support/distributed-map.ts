/**
 * The test harness's stand-in for a Distributed Map state, for the ASL interpreter `aws-local-stepfunctions`: its
 * Node build does not execute a Distributed Map (it would iterate the state's input and ignore ItemReader, ItemBatcher
 * and ResultWriter). Where a test runs the synthesized definition in the interpreter, `standInDistributedMaps`
 * rewrites each Distributed Map state into a Task state of the same name, with the state's Catch, ResultPath and
 * Next/End kept, whose local handler (`runDistributedMap`) does what Step Functions does with it:
 *
 *   ItemReader     reads the JSON array the reader names (Bucket and Key resolved against the state's input) through
 *                  the test's `readItems` (the emulator's S3, or items a unit test hands over)
 *   ItemSelector   applied to each item ($ paths of the state's input, $$.Map.Item.Value and .Index)
 *   ItemBatcher    MaxItemsPerBatch items to a child, with BatchInput
 *   ItemProcessor  each item (or batch) runs as a child execution of its own: a separate interpreter run of the
 *                  processor's states with its own history, MaxConcurrency at a time
 *   ToleratedFailure  unset, so 0: when a child fails the map fails with States.ExceedToleratedFailureThreshold
 *   ResultWriter   not written (the map's result is discarded by ResultPath null in our definition)
 *
 * Step Functions itself runs the real state (ItemReader, ItemBatcher, ResultWriter, child executions) against the
 * emulator's S3 in test/integration/distributed-map.test.ts; this stand-in lets the interpreter-based tests run the
 * rest of the definition unchanged.
 */

type Json = ReturnType<typeof JSON.parse>;

/** The Task resource the rewritten states name; only the stand-in's handler answers it. */
export const DISTRIBUTED_MAP_STAND_IN = 'arn:aws:states:::test-harness:distributedMap';

/** A Distributed Map state as the definition holds it (the fields the stand-in reads). */
export interface DistributedMapState {
  Type: 'Map';
  ItemReader: { Resource: string; ReaderConfig?: { InputType?: string }; Parameters: Record<string, Json> };
  ItemSelector?: Record<string, Json>;
  ItemBatcher?: { MaxItemsPerBatch?: number; BatchInput?: Record<string, Json> };
  ItemProcessor: { ProcessorConfig: { Mode: string; ExecutionType?: string }; StartAt: string; States: Record<string, Json> };
  MaxConcurrency?: number;
  ToleratedFailureCount?: number;
  ToleratedFailurePercentage?: number;
  ResultPath?: string | null;
  Catch?: Json[];
  Next?: string;
  End?: boolean;
  Comment?: string;
}

/** A definition (or a Map's processor) as the interpreter runs it. */
export interface AslStates {
  StartAt: string;
  States: Record<string, Json>;
}

/** What one child execution did, as the test's runner reports it. */
export interface ChildRun {
  error?: { Error?: string; Cause?: string };
}

/** How the stand-in reaches the test's world: the items behind a reader, and a child execution of the processor. */
export interface DistributedMapRuntime {
  readItems(bucket: string, key: string): Promise<unknown[]>;
  /** Runs `processor` on `input` as child execution number `index` of the state `mapState`. */
  runChild(mapState: string, processor: AslStates, input: Json, index: number): Promise<ChildRun>;
  /** The ARN of the execution running the map (`$$.Execution.Id` in its ItemSelector). */
  executionArn: string;
}

/** True for a Map state in DISTRIBUTED mode. */
export function isDistributedMap(state: Json): state is DistributedMapState {
  return state?.Type === 'Map' && state.ItemProcessor?.ProcessorConfig?.Mode === 'DISTRIBUTED';
}

/**
 * The definition with every top-level Distributed Map replaced by a stand-in Task state of the same name, and the
 * original states by name (for `runDistributedMap`).
 */
export function standInDistributedMaps<T extends AslStates>(definition: T): { definition: T; maps: Map<string, DistributedMapState> } {
  const maps = new Map<string, DistributedMapState>();
  const states: Record<string, Json> = {};
  for (const [name, state] of Object.entries(definition.States)) {
    if (!isDistributedMap(state)) {
      states[name] = state;
      continue;
    }
    maps.set(name, state);
    states[name] = {
      Type: 'Task',
      Resource: DISTRIBUTED_MAP_STAND_IN,
      Comment: `test harness stand-in for the Distributed Map "${name}"`,
      ResultPath: state.ResultPath === undefined ? '$' : state.ResultPath,
      ...(state.Catch ? { Catch: state.Catch } : {}),
      ...(state.End ? { End: true } : { Next: state.Next }),
    };
  }
  return { definition: { ...definition, States: states }, maps };
}

/** Where a template is resolved: the current item, and the ARN of the execution running the map. */
interface Place {
  value: unknown;
  index: number;
  executionArn: string;
}

/** The value at a JSONPath of the simple forms our definition uses: `$`, `$.a.b`, `$$.Map.Item.Value`, `$$.Map.Item.Index`, `$$.Execution.Id`. */
function valueAt(path: string, input: Json, item: Place): unknown {
  if (path === '$$.Execution.Id') return item.executionArn;
  if (path === '$$.Map.Item.Value') return item.value;
  if (path === '$$.Map.Item.Index') return item.index;
  if (path === '$') return input;
  if (!path.startsWith('$.')) throw new Error(`distributed map stand-in: unsupported path ${path}`);
  return path
    .slice(2)
    .split('.')
    .reduce<unknown>((v, k) => {
      if (v === null || typeof v !== 'object' || !(k in v)) throw new Error(`distributed map stand-in: ${path} is not in the state input`);
      return (v as Record<string, unknown>)[k];
    }, input);
}

/** A Parameters-style template (`"key.$": path`) resolved against the input and the current item. */
function resolveTemplate(template: Record<string, Json>, input: Json, item: Place): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(template).map(([k, v]) =>
      k.endsWith('.$') ? [k.slice(0, -2), valueAt(String(v), input, item)] : [k, v !== null && typeof v === 'object' && !Array.isArray(v) ? resolveTemplate(v, input, item) : v],
    ),
  );
}

/** Error names Step Functions uses for a Distributed Map's own failures. */
const ITEM_READER_FAILED = 'States.ItemReaderFailed';
const THRESHOLD_EXCEEDED = 'States.ExceedToleratedFailureThreshold';

const fail = (name: string, message: string) => Object.assign(new Error(message), { name });

/**
 * Runs one Distributed Map state on `input` as Step Functions would (see the module comment) and returns the map's
 * result (its ResultPath discards it in our definition); throws the map's error when it fails.
 */
export async function runDistributedMap(name: string, state: DistributedMapState, input: Json, runtime: DistributedMapRuntime): Promise<Json> {
  const { executionArn } = runtime;
  const params = resolveTemplate(state.ItemReader.Parameters, input, { value: undefined, index: -1, executionArn });
  if (state.ItemReader.Resource !== 'arn:aws:states:::s3:getObject' || state.ItemReader.ReaderConfig?.InputType !== 'JSON') {
    throw new Error(`distributed map stand-in: "${name}" reads ${state.ItemReader.Resource} (${state.ItemReader.ReaderConfig?.InputType}); only S3 JSON arrays are supported`);
  }
  let items: unknown[];
  try {
    items = await runtime.readItems(String(params.Bucket), String(params.Key));
  } catch (err) {
    throw fail(ITEM_READER_FAILED, `cannot read items from s3://${String(params.Bucket)}/${String(params.Key)}: ${(err as Error).message}`);
  }
  if (!Array.isArray(items)) throw fail(ITEM_READER_FAILED, `s3://${String(params.Bucket)}/${String(params.Key)} is not a JSON array`);
  const selected = items.map((value, index) => (state.ItemSelector ? resolveTemplate(state.ItemSelector, input, { value, index, executionArn }) : value));
  const perChild = state.ItemBatcher?.MaxItemsPerBatch;
  const batchInput = state.ItemBatcher?.BatchInput ? resolveTemplate(state.ItemBatcher.BatchInput, input, { value: undefined, index: -1, executionArn }) : undefined;
  const childInputs: Json[] = [];
  if (perChild === undefined) childInputs.push(...selected);
  else for (let i = 0; i < selected.length; i += perChild) childInputs.push({ Items: selected.slice(i, i + perChild), ...(batchInput ? { BatchInput: batchInput } : {}) });

  const processor: AslStates = { StartAt: state.ItemProcessor.StartAt, States: state.ItemProcessor.States };
  const tolerated = (state.ToleratedFailureCount ?? 0) + (state.ToleratedFailurePercentage ?? 0);
  if (tolerated !== 0) throw new Error(`distributed map stand-in: "${name}" tolerates failures; only ToleratedFailure 0 is supported`);
  const failures: { index: number; error?: ChildRun['error'] }[] = [];
  let next = 0;
  const worker = async () => {
    // Like a Map Run past its threshold: no new children once one failed.
    while (next < childInputs.length && failures.length === 0) {
      const index = next++;
      const child = await runtime.runChild(name, processor, childInputs[index], index);
      if (child.error) failures.push({ index, error: child.error });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(state.MaxConcurrency || childInputs.length, childInputs.length)) }, worker));
  if (failures.length > 0) {
    const [first] = failures;
    throw fail(THRESHOLD_EXCEEDED, `The specified tolerated failure threshold was exceeded: child execution ${first!.index} failed with ${first!.error?.Error ?? 'an error'}`);
  }
  return { MapRunArn: `stand-in:${name}`, children: childInputs.length };
}
