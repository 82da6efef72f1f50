import { readDeploymentEnv, requireStores, S3_ENV } from '../config/deployment-env.js';
import { lineReporter } from '../run/reporter.js';
import { openStores, type Stores } from '../store/index.js';
import type { StageContext } from './context.js';

let opened: { source: string; stores: Stores } | undefined;
let memo: { key: string; map: Map<string, unknown> } | undefined;

/**
 * The stage context of the Lambda handlers and the Batch trainer: the stores the deployment environment names
 * (on AWS the bucket from BUCKET, its datasets/ folder as the data root), plain log lines, and a memo that lives as
 * long as the container keeps working on the same run (a warm featurize container reuses its loaded encoder and
 * parsed splits across shards; a shard of another run starts a fresh memo, so memory does not grow across runs).
 */
export function deploymentStageContext(runId: string, env: NodeJS.ProcessEnv = process.env): StageContext {
  const where = requireStores(readDeploymentEnv(env));
  // Stores are reused across invocations of a warm container, and reopened when the environment names others.
  const source = JSON.stringify([where, ...Object.values(S3_ENV).map((name) => env[name] ?? '')]);
  if (opened?.source !== source) opened = { source, stores: openStores(where, env) };
  const memoKey = `${source}\0${runId}`;
  if (memo?.key !== memoKey) memo = { key: memoKey, map: new Map() };
  return { ...opened.stores, reporter: lineReporter(), memo: memo.map };
}
