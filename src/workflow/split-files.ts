import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { createGzipMembers } from '../format/gzip-members.js';
import type { BlobStore } from '../store/blob-store.js';
import type { Example } from '../data/read-table.js';
import { InvalidDataError } from '../errors/index.js';

/**
 * Bytes of JSON lines per gzip member (IMDB's 42 MB training split is ~40, compressed on all cores at once). With
 * 4 MiB members `npm run bench -- --only prepare` was slower and its peak RSS ~60 MB higher.
 */
const SPLIT_MEMBER_BYTES = 1024 * 1024;
/** UTF-16 code units of JSON lines collected before they go to the compressor. */
const SPLIT_WRITE_BATCH = 256 * 1024;

/** A dataset part being written row by row; the object appears only when `finish` succeeds. */
export interface SplitWriter {
  /** Appends one row; resolves when the stream can take more (backpressure). */
  write(example: Example): Promise<void>;
  /** Ends the file and waits until it is stored. */
  finish(): Promise<void>;
  /** Stops writing; nothing is stored. */
  abort(reason: Error): Promise<void>;
}

/**
 * Streams a dataset part to the store as gzipped JSON lines `{"text": ..., "label": ...}` (putStream: atomic, so a
 * failed or aborted write leaves no object), holding only the blocks being compressed (one gzip member
 * each, compressed on all cores at once).
 */
export function openSplitWriter(store: BlobStore, key: string): SplitWriter {
  // Level 1: splits are intermediate files read once by Featurize; level 6 took 2.2 s of the thread pool on IMDB
  // (66 MB of JSON lines) against 0.8 s, for files 26.4 instead of 29.5 MB.
  const gzip = createGzipMembers({ level: 1, blockBytes: SPLIT_MEMBER_BYTES, inFlight: availableParallelism() });
  // Errors reach the caller through `stored` (putStream's pipeline sees them, also on a stream destroyed before
  // it attached); this listener only keeps such an early error from being reported as uncaught.
  gzip.on('error', () => {});
  const stored = store.putStream(key, gzip);
  // A store that fails stops reading: writers waiting for 'drain' then wake on this rejection instead of hanging.
  // The no-op handler keeps the rejection from being reported as unhandled before someone awaits it.
  stored.catch(() => {});
  // Rows go to the compressor in batches: each write is a stream round trip, too much per row.
  let batch: string[] = [];
  let batched = 0;
  const flush = async () => {
    const chunk = batch.join('');
    batch = [];
    batched = 0;
    if (!gzip.write(chunk)) await Promise.race([once(gzip, 'drain'), stored]);
  };
  return {
    async write(example) {
      const line = `${JSON.stringify({ text: example.text, label: example.label })}\n`;
      batch.push(line);
      batched += line.length;
      if (batched >= SPLIT_WRITE_BATCH) await flush();
    },
    async finish() {
      if (batched > 0) await flush();
      gzip.end();
      await stored;
    },
    async abort(reason) {
      gzip.destroy(reason);
      await stored.catch(() => {});
    },
  };
}

/** The process memo's key for a part's rows as readSplit returns them (StageContext.memo). */
export function splitMemoKey(key: string): string {
  return `split:${key}`;
}

/** Reads a whole part written by openSplitWriter (in source-file order); errors name the key and line. */
export async function readSplit(store: BlobStore, key: string): Promise<Example[]> {
  const text = gunzipSync(await store.getOrThrow(key)).toString('utf8');
  const out: Example[] = [];
  let line = 0;
  for (const row of text.split('\n')) {
    line++;
    if (row === '') continue;
    const e = JSON.parse(row) as Partial<Example>;
    if (typeof e.text !== 'string' || !Number.isInteger(e.label)) {
      throw new InvalidDataError(`${store.url}/${key}:${line}: expected {"text": string, "label": integer}`);
    }
    out.push(e as Example);
  }
  return out;
}
