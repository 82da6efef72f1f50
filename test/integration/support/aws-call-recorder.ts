/**
 * Records the AWS calls the product makes, tagged with the stage that made them. In this process the recorder is
 * the observer of src/store/aws-calls.ts, and each stage's work runs inside `recorder.stage(name, work)`, so calls
 * are attributed through the async context (calls made outside any stage, like a test's own reads, are not kept).
 * A trainer process records its calls into a file instead (aws-call-log.ts, loaded by NODE_OPTIONS).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { observeAwsCalls, type AwsCall } from '../../../src/store/aws-calls.js';

/** The file a trainer process appends its calls to, one JSON line per call. */
export const CALL_LOG_ENV = 'TEXTSHIFT_TEST_AWS_CALL_LOG';

/** One AWS call: who made it, what it was and its scalar parameters (bodies are left out). */
export interface RecordedCall {
  stage: string;
  client: string;
  command: string;
  params: Record<string, string | number | boolean | string[]>;
  error?: string;
}

/** A call as recorded, without its stage: only scalar parameters and lists of strings (keys, ARNs, job ids). */
export function callRecord(call: AwsCall): Omit<RecordedCall, 'stage'> {
  const params: RecordedCall['params'] = {};
  for (const [k, v] of Object.entries(call.input)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') params[k] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) params[k] = v as string[];
  }
  return { client: call.client, command: call.command, params, ...(call.error === undefined ? {} : { error: call.error }) };
}

/** Records every AWS call made in this process inside a `stage(...)` scope, until `stop()`. */
export class AwsCallRecorder {
  readonly calls: RecordedCall[] = [];
  private readonly scope = new AsyncLocalStorage<string>();

  constructor() {
    observeAwsCalls((call) => {
      const stage = this.scope.getStore();
      if (stage !== undefined) this.calls.push({ stage, ...callRecord(call) });
    });
  }

  /** Runs `work`, attributing the AWS calls it makes to `stage`. */
  stage<T>(stage: string, work: () => Promise<T>): Promise<T> {
    return this.scope.run(stage, work);
  }

  /** Adds the calls a process wrote to `file` (see aws-call-log.ts), attributed to `stage`; the file may not exist. */
  addCallLog(stage: string, file: string): void {
    if (!existsSync(file)) return;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line.trim() !== '') this.calls.push({ ...(JSON.parse(line) as Omit<RecordedCall, 'stage'>), stage });
    }
  }

  /** Uninstalls the observer. */
  stop(): void {
    observeAwsCalls(undefined);
  }
}

/**
 * The environment that makes a Node process started with `--import tsx` (the trainer's entry) append its AWS calls
 * to `file`: NODE_OPTIONS preloads aws-call-log.ts after tsx.
 */
export function callLogEnvironment(file: string): Record<string, string> {
  const preload = new URL('./aws-call-log.ts', import.meta.url);
  if (!existsSync(fileURLToPath(preload))) throw new Error(`${preload.href} is missing`);
  return { NODE_OPTIONS: `--import tsx --import ${preload.href}`, [CALL_LOG_ENV]: file };
}
