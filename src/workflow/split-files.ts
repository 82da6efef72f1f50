import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
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

/** Bytes gunzip hands over at a time when a split is read back (zlib's default is 16 KiB: four times the reads). */
const SPLIT_READ_CHUNK = 64 * 1024;

/**
 * Streams a part written by openSplitWriter through gunzip and hands `visit` each row (0-based, in file order) that
 * `wanted` accepts; other rows are only counted, never decoded or parsed. It holds one chunk and the rows it hands
 * over, never the part as one string, so a part of any size can be read (one string stops at V8's limit, about
 * 512 M characters). Returns the number of rows; errors name the key and line.
 */
export async function forEachSplitRow(
  store: BlobStore,
  key: string,
  visit: (row: number, example: Example) => void,
  wanted: (row: number) => boolean = () => true,
): Promise<number> {
  let row = 0;
  let line = 0;
  const take = (bytes: Buffer) => {
    line++;
    if (bytes.length === 0) return;
    if (wanted(row)) visit(row, parseRow(store, key, line, bytes.toString('utf8')));
    row++;
  };
  await pipeline(await store.getStream(key), createGunzip({ chunkSize: SPLIT_READ_CHUNK }), async (chunks: AsyncIterable<Buffer>) => {
    // A line cut by a chunk boundary waits here for its end (a JSON line holds no raw newline, and no UTF-8
    // character has a 0x0a byte, so cutting at 0x0a never splits a character).
    let carry: Buffer[] = [];
    for await (const chunk of chunks) {
      let start = 0;
      for (let end = chunk.indexOf(0x0a, start); end >= 0; end = chunk.indexOf(0x0a, start)) {
        if (carry.length > 0) {
          take(Buffer.concat([...carry, chunk.subarray(start, end)]));
          carry = [];
        } else {
          take(chunk.subarray(start, end));
        }
        start = end + 1;
      }
      if (start < chunk.length) carry.push(chunk.subarray(start));
    }
    if (carry.length > 0) take(Buffer.concat(carry));
  });
  return row;
}

/** Reads a whole part written by openSplitWriter (in source-file order), streaming; errors name the key and line. */
export async function readSplit(store: BlobStore, key: string): Promise<Example[]> {
  const out: Example[] = [];
  await forEachSplitRow(store, key, (_, example) => out.push(example));
  return out;
}

/** One JSON line of a split file as a row, or an error naming the file and line. */
function parseRow(store: BlobStore, key: string, line: number, text: string): Example {
  let e: Partial<Example>;
  try {
    e = JSON.parse(text) as Partial<Example>;
  } catch (err) {
    throw new InvalidDataError(`${store.url}/${key}:${line}: not a JSON line (${(err as Error).message})`);
  }
  if (typeof e?.text !== 'string' || !Number.isInteger(e.label)) {
    throw new InvalidDataError(`${store.url}/${key}:${line}: expected {"text": string, "label": integer}`);
  }
  return e as Example;
}
