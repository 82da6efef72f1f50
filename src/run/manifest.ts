import { PreconditionFailedError, type BlobStore } from '../store/blob-store.js';
import { updateObject } from '../store/conditional-update.js';
import type { Experiment } from '../config/experiment.js';
import type { InputPin, LoadedFile, SkippedRow, StageRecord, StageStatus, StageUsage } from './records.js';
import { runKeys } from './keys.js';
import { classifyError } from '../errors/classify.js';
import { InternalError, MissingInputError } from '../errors/index.js';

/** `runs/<id>/manifest.json`: what a run is (resolved config, inputs) and how far it got (stage records). */
export interface Manifest {
  runId: string;
  /** The experiment file the run read: its sha256, and in a versioned bucket its VersionId and ETag (what a resume reads). */
  experiment: { key: string; name: string; sha256: string; version?: string; etag?: string };
  config: Experiment;
  quick: boolean;
  /** Per-family subsample caps were ignored (`--full`). */
  full?: boolean;
  createdAt: string;
  updatedAt: string;
  status: 'running' | 'succeeded' | 'failed';
  inputs: Record<string, LoadedFile[]>;
  /**
   * Every dataset file the run reads (data-store key -> the version it resolved when Prepare first ran): a retried or
   * redriven Prepare reads exactly these versions, or fails if a folder's file changed (absent in old manifests).
   */
  pinned?: Record<string, InputPin>;
  /**
   * Every file of the BERT-family model folders the run encodes with (run-store key `models/<name>/...` -> the version
   * Prepare pinned): every Featurize shard reads exactly these, or fails if a folder's file changed (absent in old
   * manifests). Apart from `pinned`, whose keys are in the data store.
   */
  pinnedModels?: Record<string, InputPin>;
  /** Rows skipped under `onBadRow: "skip"`, per dataset: the count and the first few. */
  skippedRows: Record<string, { count: number; first: SkippedRow[] }>;
  /** Examples per dataset part after splitting and subsampling, per feature family. */
  splits: Record<string, Record<string, number>>;
  /** Stage name (e.g. `prepare`, `featurize`, `train:bow`, `report`) -> status, timings and usage. */
  stages: Record<string, StageRecord>;
  /**
   * Encoder pass (named by its shards' first family; src/config/encoder-passes.ts) -> the families it fed, its encoder
   * identity, the texts this run encoded (cache misses) and its shards found in the cache. Families that differ only in
   * pooling share one pass, so each text counts once.
   */
  encoded?: Record<string, EncoderPassRecord>;
  /**
   * Why the run failed: the stage, the cause in words, its error name and whether it was retryable (the last two
   * absent in old manifests), and when it was a time limit, which one and why (src/errors/time-limits.ts).
   */
  failure?: { stage: string; error: string; errorName?: string; retryable?: boolean; timeLimit?: { limit: string; reason: string } };
  versions: Record<string, string>;
}

/** What one encoder pass of a run did. */
export interface EncoderPassRecord {
  families: string[];
  /** The encoder identity of its cache entries (absent when no shard recorded one). */
  encoder?: string;
  texts: number;
  cachedShards: number;
  computedShards: number;
}

/** A run's manifest, or undefined when the run has none (yet). */
export async function findManifest(store: BlobStore, runId: string): Promise<Manifest | undefined> {
  const buf = await store.get(runKeys(runId).manifest);
  return buf && (JSON.parse(buf.toString('utf8')) as Manifest);
}

/** Reads a run's manifest; throws naming the key when the run does not exist. */
export async function readManifest(store: BlobStore, runId: string): Promise<Manifest> {
  const m = await findManifest(store, runId);
  if (!m) throw new MissingInputError(`run "${runId}" not found: ${store.url}/${runKeys(runId).manifest} does not exist`);
  return m;
}

/** Creates a run's manifest only if the run has none yet (a conditional create); false when another writer made one first. */
export async function createManifest(store: BlobStore, m: Manifest): Promise<boolean> {
  m.updatedAt = new Date().toISOString();
  try {
    await store.put(runKeys(m.runId).manifest, JSON.stringify(m, null, 2), { ifNoneMatch: '*' });
    return true;
  } catch (err) {
    if (err instanceof PreconditionFailedError) return false;
    throw err;
  }
}

/**
 * Changes a run's manifest without losing anyone else's change: reads it with its etag, applies `change`, and writes
 * it only if nobody wrote it in between (a conditional put, If-Match); when someone did, reads it again and re-applies
 * `change` (updateObject: up to UPDATE_ATTEMPTS times with jittered backoff). `change` therefore sets only what it
 * means to set, on the manifest it is given. Every writer of an existing manifest goes through here. Returns the
 * manifest as written.
 */
export async function updateManifest(store: BlobStore, runId: string, change: (m: Manifest) => void): Promise<Manifest> {
  const key = runKeys(runId).manifest;
  return updateObject(store, key, (read) => {
    if (!read) throw new MissingInputError(`run "${runId}" not found: ${store.url}/${key} does not exist`);
    if (read.info.etag === undefined) throw new InternalError(`${store.url}: the store gave no etag for ${key}, so it cannot be updated safely`);
    const m = JSON.parse(read.body.toString('utf8')) as Manifest;
    change(m);
    m.updatedAt = new Date().toISOString();
    return { result: m, body: JSON.stringify(m, null, 2) };
  });
}

/** Records one stage's status in the manifest (stages finishing at once each keep their own record). */
export async function recordStage(store: BlobStore, runId: string, stage: string, record: StageRecord): Promise<Manifest> {
  return updateManifest(store, runId, (m) => {
    m.stages[stage] = record;
  });
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
