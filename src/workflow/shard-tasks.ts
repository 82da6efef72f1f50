import { createHash } from 'node:crypto';
import type { BlobStore } from '../store/blob-store.js';
import type { runKeys } from '../run/keys.js';
import type { ShardTask, ShardTaskBatch } from '../run/records.js';
import { ConfigError, InvalidDataError } from '../errors/index.js';
import type { StageContext } from './context.js';
import { holdTextChars } from './prepare-data.js';
import { forEachSplitRow, splitMemoKey } from './split-files.js';

/**
 * Shard-task PUTs in flight at once. One awaited PUT per shard took 3.3 ms on LocalStack (327 s per 100,000 shards)
 * and tens of ms on S3, past Prepare's 900 s timeout; the SDK's HTTP agent keeps up to 50 sockets.
 */
export const SHARD_WRITES_IN_FLIGHT = 32;
/** Shards per batch record: a retried Prepare reads one record per this many shards to skip the ones stored. */
export const SHARD_TASK_BATCH = 1000;

/**
 * Characters of shard texts Prepare holds at once: a sixteenth of V8's heap limit (259 M characters with this
 * machine's default heap). Parsed texts and the task bodies made from them cost several bytes of RSS a character:
 * Prepare and Featurize of the 1 GB CSV (a 0.68 G-character train split) peaked at 2.30 GB with an eighth (two
 * reads of the split) and 1.53 GB with a sixteenth (three), in the same time.
 */
export function shardTextChars(): number {
  return Math.floor(holdTextChars() / 2);
}

/** Knobs of writeShardTasks (tests set them small). */
export interface ShardTaskOptions {
  /** PUTs in flight at once (default SHARD_WRITES_IN_FLIGHT). */
  inFlight?: number;
  /** Characters of shard texts held at once while taking them from a split (default shardTextChars()). */
  textChars?: number;
}

/** What writeShardTasks did: the shard keys in plan order, and how it got there. */
export interface ShardTasksWritten {
  keys: string[];
  /** Tasks stored by this call. */
  written: number;
  /** Tasks a previous attempt had stored with the same bytes (per its batch record), left as they are. */
  kept: number;
  /** Reads of the split file to take the tasks' texts (0 when the split is in the memo, or no task carries texts). */
  splitReads: number;
}

/**
 * Stores the featurize tasks of one part of one encoder pass (all of one feature, dataset, part and split), in
 * order, as `keys.shard(..., i)`, and returns their keys.
 *
 * A task carries its rows' texts unless this process's memo holds the split (a local run, whose Featurize takes the
 * rows from there): a shard Lambda then reads its own task, not a split of any size. The texts are taken from the
 * split file streaming, for as many shards at a time as fit in `textChars` (one read of the split per such window,
 * each row parsed only in the window that needs it), so Prepare never holds a whole split either.
 *
 * The PUTs go `inFlight` at a time. After each batch of SHARD_TASK_BATCH tasks is stored, a record of their sha256s
 * is stored: a retried Prepare (a timeout, a redrive) skips every task whose record matches the bytes it would write
 * and whose object is there at that size, and stores the rest.
 */
export async function writeShardTasks(ctx: StageContext, keys: ReturnType<typeof runKeys>, tasks: readonly ShardTask[], options: ShardTaskOptions = {}): Promise<ShardTasksWritten> {
  const done: ShardTasksWritten = { keys: [], written: 0, kept: 0, splitReads: 0 };
  const first = tasks[0];
  if (first === undefined) return done;
  const { feature, dataset, part, splitKey } = first;
  done.keys = tasks.map((_, i) => keys.shard(feature, dataset, part, i));
  const batchesPrefix = keys.shardTaskBatches(feature, dataset, part);
  const writes = new BoundedWrites(options.inFlight ?? SHARD_WRITES_IN_FLIGHT);
  try {
    const before = await storedBefore(ctx.store, `${keys.shardsPrefix}${feature}/${dataset}/${part}/`, batchesPrefix, writes);
    // A record is stored beside the PUTs in flight (not queued behind them): it is small, and it is due now.
    const batches = new BatchRecords(tasks.length, (b, record) => writes.start(() => ctx.store.put(`${batchesPrefix}${batchName(b)}`, JSON.stringify(record))));
    const withTexts = !(ctx.memo?.has(splitMemoKey(splitKey)) ?? false);
    const windows = withTexts ? textWindows(ctx.store, tasks, options.textChars ?? shardTextChars()) : plainWindow(tasks.length);
    for await (const window of windows) {
      if (window.texts) done.splitReads++;
      for (let i = window.start; i < window.end; i++) {
        const key = done.keys[i]!;
        const body = taskBody(tasks[i]!, window.texts?.[i - window.start], key);
        const sha256 = createHash('sha256').update(body).digest('hex');
        const b = Math.floor(i / SHARD_TASK_BATCH);
        if (before.batches.get(b)?.sha256[i - b * SHARD_TASK_BATCH] === sha256 && before.sizes.get(key) === Buffer.byteLength(body)) {
          done.kept++;
          batches.stored(i, sha256, false);
          continue;
        }
        await writes.run(async () => {
          await ctx.store.put(key, body);
          done.written++;
          batches.stored(i, sha256, true);
        });
      }
    }
    await writes.drain();
  } finally {
    await writes.settle();
  }
  return done;
}

/** A run of consecutive tasks [start, end) and, when the tasks carry them, their texts (`texts[i - start]`). */
interface Window {
  start: number;
  end: number;
  texts?: string[][];
}

async function* plainWindow(count: number): AsyncGenerator<Window> {
  yield { start: 0, end: count };
}

/**
 * The tasks' texts, a window of consecutive tasks per read of the split. A read starts with every remaining task in
 * its window and, while the texts taken pass `textChars`, drops the last task of the window (always keeping the
 * first, so every read makes progress): the next read starts where this one stopped.
 */
async function* textWindows(store: BlobStore, tasks: readonly ShardTask[], textChars: number): AsyncGenerator<Window> {
  const { splitKey } = tasks[0]!;
  const lines = tasks.reduce((max, t) => t.rows.reduce((m, r) => Math.max(m, r + 1), max), 0);
  // Each line of the split is in at most one task of a pass's part (its rows are distinct): which, and where.
  const owner = new Int32Array(lines).fill(-1);
  const at = new Uint32Array(lines);
  tasks.forEach((task, t) =>
    task.rows.forEach((line, j) => {
      owner[line] = t;
      at[line] = j;
    }),
  );
  for (let start = 0; start < tasks.length; ) {
    let end = tasks.length;
    const texts: string[][] = [];
    const chars: number[] = [];
    let held = 0;
    await forEachSplitRow(
      store,
      splitKey,
      (line, example) => {
        const t = owner[line]!;
        if (t >= end) return;
        (texts[t - start] ??= new Array<string>(tasks[t]!.rows.length))[at[line]!] = example.text;
        chars[t - start] = (chars[t - start] ?? 0) + example.text.length;
        held += example.text.length;
        while (held > textChars && end - 1 > start) {
          end--;
          held -= chars[end - start] ?? 0;
          texts.length = end - start;
          chars.length = end - start;
        }
      },
      (line) => line < lines && owner[line]! >= start && owner[line]! < end,
    );
    for (let t = start; t < end; t++) {
      const got = texts[t - start];
      const missing = tasks[t]!.rows.findIndex((_, j) => got?.[j] === undefined);
      if (missing >= 0) throw new InvalidDataError(`${store.url}/${splitKey}: has no line ${tasks[t]!.rows[missing]}, which shard ${t} of ${tasks[t]!.feature} reads`);
    }
    yield { start, end, texts };
    start = end;
  }
}

/** A task's stored bytes; a shard whose texts cannot be one JSON string names the setting that makes it smaller. */
function taskBody(task: ShardTask, texts: string[] | undefined, key: string): string {
  if (texts === undefined) return JSON.stringify(task);
  try {
    return JSON.stringify({ ...task, texts });
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    const chars = texts.reduce((n, t) => n + t.length, 0);
    throw new ConfigError(
      `${key}: the shard's ${texts.length} texts (${chars} characters) do not fit in one JSON string (V8's limit is about 512 M characters); set features.${task.feature}.shardSize below ${texts.length}`,
      { cause: err },
    );
  }
}

/** A batch record's file name: its number, zero-padded like shard keys so they list in order. */
function batchName(batch: number): string {
  return `${String(batch).padStart(5, '0')}.json`;
}

/** What a previous attempt stored of a part's tasks: each task object's size, and its batch records by number. */
async function storedBefore(
  store: BlobStore,
  shardsPrefix: string,
  batchesPrefix: string,
  writes: BoundedWrites,
): Promise<{ sizes: Map<string, number>; batches: Map<number, ShardTaskBatch> }> {
  const [shards, records] = await Promise.all([store.list(shardsPrefix), store.list(batchesPrefix)]);
  const sizes = new Map(shards.map((o) => [o.key, o.size]));
  const batches = new Map<number, ShardTaskBatch>();
  for (const { key } of records) {
    const b = Number(key.slice(batchesPrefix.length).replace(/\.json$/, ''));
    if (!Number.isInteger(b)) continue;
    await writes.run(async () => {
      const record = parseRecord(await store.get(key));
      // An unreadable record only costs the rewrite of its batch.
      if (record !== undefined && record.first === b * SHARD_TASK_BATCH) batches.set(b, record);
    });
  }
  await writes.drain();
  return { sizes, batches };
}

function parseRecord(body: Buffer | undefined): ShardTaskBatch | undefined {
  if (body === undefined) return undefined;
  try {
    const r = JSON.parse(body.toString('utf8')) as Partial<ShardTaskBatch>;
    return Number.isInteger(r.first) && Array.isArray(r.sha256) ? (r as ShardTaskBatch) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The batch records of one part: a batch's record is stored once every task of it is stored (or was already),
 * provided this attempt stored at least one of them (otherwise the record it has is the right one).
 */
class BatchRecords {
  private readonly pending: number[];
  private readonly sha256: string[][];
  private readonly changed: boolean[];

  constructor(
    count: number,
    private readonly store: (batch: number, record: ShardTaskBatch) => void,
  ) {
    const batches = Math.ceil(count / SHARD_TASK_BATCH);
    this.pending = Array.from({ length: batches }, (_, b) => Math.min(SHARD_TASK_BATCH, count - b * SHARD_TASK_BATCH));
    this.sha256 = Array.from({ length: batches }, () => []);
    this.changed = new Array<boolean>(batches).fill(false);
  }

  /** Task `i` is stored with these bytes (`written`: by this attempt). */
  stored(i: number, sha256: string, written: boolean): void {
    const b = Math.floor(i / SHARD_TASK_BATCH);
    this.sha256[b]![i - b * SHARD_TASK_BATCH] = sha256;
    if (written) this.changed[b] = true;
    if (--this.pending[b]! === 0 && this.changed[b]) this.store(b, { first: b * SHARD_TASK_BATCH, sha256: this.sha256[b]! });
  }
}

/**
 * Store requests, at most `limit` in flight. The first failure stops new work (run rejects with it); settle waits for
 * what is in flight, so nothing is written after the caller has failed.
 */
class BoundedWrites {
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(private readonly limit: number) {}

  /** Starts `work` once a slot is free (resolves when it has started). */
  async run(work: () => Promise<void>): Promise<void> {
    while (this.inFlight.size >= this.limit) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure.error;
    this.start(work);
  }

  /** Starts `work` now, slot or not. */
  start(work: () => Promise<void>): void {
    const running: Promise<void> = work()
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.inFlight.delete(running));
    this.inFlight.add(running);
  }

  /** Waits for everything started; rejects with the first failure. */
  async drain(): Promise<void> {
    await this.settle();
    if (this.failure) throw this.failure.error;
  }

  /** Waits for everything started, failed or not. */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }
}
