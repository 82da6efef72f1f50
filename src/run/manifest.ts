import type { BlobStore } from '../store/blob-store.js';
import type { Experiment } from '../config/experiment.js';
import type { LoadedFile } from './records.js';
import type { SkippedRow } from './records.js';
import { runKeys } from './keys.js';
import type { StageRecord, StageStatus, StageUsage } from './records.js';
import { classifyError } from '../errors/classify.js';
import { MissingInputError } from '../errors/index.js';

/** `runs/<id>/manifest.json`: what a run is (resolved config, inputs) and how far it got (stage records). */
export interface Manifest {
  runId: string;
  experiment: { key: string; name: string; sha256: string };
  config: Experiment;
  quick: boolean;
  /** Per-family subsample caps were ignored (`--full`). */
  full?: boolean;
  createdAt: string;
  updatedAt: string;
  status: 'running' | 'succeeded' | 'failed';
  inputs: Record<string, LoadedFile[]>;
  /** Rows skipped under `onBadRow: "skip"`, per dataset: the count and the first few. */
  skippedRows: Record<string, { count: number; first: SkippedRow[] }>;
  /** Examples per dataset part after splitting and subsampling, per feature family. */
  splits: Record<string, Record<string, number>>;
  /** Stage name (e.g. `prepare`, `featurize`, `train:bow`, `report`) -> status, timings and usage. */
  stages: Record<string, StageRecord>;
  /** Feature family -> texts actually encoded by this run (cache misses), and cache hits. */
  encoded?: Record<string, { texts: number; cachedShards: number; computedShards: number }>;
  /**
   * Why the run failed: the stage, the cause in words, its error name and whether it was retryable (the last two
   * absent in old manifests), and when it was a time limit, which one and why (src/errors/time-limits.ts).
   */
  failure?: { stage: string; error: string; errorName?: string; retryable?: boolean; timeLimit?: { limit: string; reason: string } };
  versions: Record<string, string>;
}

/** Reads a run's manifest; throws naming the key when the run does not exist. */
export async function readManifest(store: BlobStore, runId: string): Promise<Manifest> {
  const buf = await store.get(runKeys(runId).manifest);
  if (!buf) throw new MissingInputError(`run "${runId}" not found: ${store.url}/${runKeys(runId).manifest} does not exist`);
  return JSON.parse(buf.toString('utf8')) as Manifest;
}

/** Writes the manifest (atomically). */
export async function writeManifest(store: BlobStore, m: Manifest): Promise<void> {
  m.updatedAt = new Date().toISOString();
  await store.put(runKeys(m.runId).manifest, JSON.stringify(m, null, 2));
}

/**
 * Records one stage's status in its own object (parallel stages never overwrite each other), then folds every
 * stage record into manifest.json.
 */
export async function recordStage(store: BlobStore, runId: string, stage: string, record: StageRecord): Promise<Manifest> {
  // Read first: a run that does not exist fails here, before a stray stage record is written for it.
  const m = await readManifest(store, runId);
  await store.put(runKeys(runId).stage(stage), JSON.stringify({ stage, ...record }, null, 2));
  for (const { key } of await store.list(runKeys(runId).stagesPrefix)) {
    const r = JSON.parse((await store.getOrThrow(key)).toString('utf8')) as StageRecord & { stage: string };
    const { stage: name, ...rest } = r;
    m.stages[name] = rest;
  }
  await writeManifest(store, m);
  return m;
}

/** Runs `work` as a named stage: records running, then succeeded (with timing and usage) or failed. */
export async function asStage<T>(
  store: BlobStore,
  runId: string,
  stage: string,
  work: () => Promise<{ result: T; usage?: Partial<StageUsage> }>,
): Promise<T> {
  const startedAt = new Date();
  await recordStage(store, runId, stage, { status: 'running', startedAt: startedAt.toISOString() });
  try {
    const { result, usage } = await work();
    const seconds = (Date.now() - startedAt.getTime()) / 1000;
    await recordStage(store, runId, stage, {
      status: 'succeeded',
      startedAt: startedAt.toISOString(),
      endedAt: new Date().toISOString(),
      seconds,
      usage: { seconds, memoryMb: Math.round(process.memoryUsage().rss / 2 ** 20), kind: 'local', invocations: 1, requests: { put: 0, get: 0, list: 0 }, bytesWritten: 0, ...usage },
    });
    return result;
  } catch (err) {
    await recordStage(store, runId, stage, failedRecord(startedAt, err));
    throw err;
  }
}

function failedRecord(startedAt: Date, err: unknown): StageRecord {
  const { name, retryable } = classifyError(err);
  return {
    status: 'failed' as StageStatus,
    startedAt: startedAt.toISOString(),
    endedAt: new Date().toISOString(),
    seconds: (Date.now() - startedAt.getTime()) / 1000,
    error: err instanceof Error ? err.message : String(err),
    errorName: name,
    retryable,
  };
}
