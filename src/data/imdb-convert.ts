/**
 * aclImdb_v1.tar.gz -> imdb.csv + imdb_index.csv in the exact format of shared/data/README.md.
 *
 * Row order (checked against the shipped file): rows 1-25,000 are the train split and 25,001-50,000 the
 * test split; each split is sorted by (label, numeric id) with "negative" before "positive", then shuffled
 * with a *fresh* `random.Random(42)` per split (train row 1 and test row 25,001 therefore share an id).
 */
import { once } from 'node:events';
import { closeSync, createWriteStream, openSync, readSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { PythonRandom } from './python-random.js';
import { InternalError, InvalidDataError } from '../errors/index.js';

export type ImdbSplit = 'train' | 'test';
export type ImdbLabel = 'negative' | 'positive';

/** One labelled review file of the archive, identified by its path `aclImdb/<split>/<pos|neg>/<id>_<rating>.txt`. */
export interface ImdbReviewRef {
  split: ImdbSplit;
  label: ImdbLabel;
  id: number;
  rating: number;
  /** Path inside the tarball, e.g. `aclImdb/train/pos/1384_7.txt`. */
  path: string;
}

/** Seed of the README's `random.Random(42).shuffle`. */
export const IMDB_SHUFFLE_SEED = 42;
export const IMDB_CSV_HEADER = 'review,sentiment\n';
export const IMDB_INDEX_HEADER = 'row,split,sentiment,rating,aclimdb_path,dax44_AMLM_path\n';

const REVIEW_PATH = /^aclImdb\/(train|test)\/(pos|neg)\/(\d+)_(\d+)\.txt$/;
const SPLITS: readonly ImdbSplit[] = ['train', 'test'];
const LABEL_RANK: Record<ImdbLabel, number> = { negative: 0, positive: 1 };

/** Parses a tar entry name; null for everything that is not a labelled train/test review (unsup/, .feat, README...). */
export function parseAclImdbPath(name: string): ImdbReviewRef | null {
  const path = name.replace(/^(\.\/)+/, '');
  const m = REVIEW_PATH.exec(path);
  if (!m) return null;
  return {
    split: m[1] as ImdbSplit,
    label: m[2] === 'pos' ? 'positive' : 'negative',
    id: Number(m[3]),
    rating: Number(m[4]),
    path,
  };
}

/** One split's row order: sorted by (label, numeric id), negative first, then shuffled by a fresh Random(seed). */
export function imdbRowOrder<T extends { label: ImdbLabel; id: number }>(reviews: readonly T[], seed = IMDB_SHUFFLE_SEED): T[] {
  const sorted = [...reviews].sort((a, b) => LABEL_RANK[a.label] - LABEL_RANK[b.label] || a.id - b.id);
  return new PythonRandom(seed).shuffle(sorted);
}

const QUOTE = 0x22;
const QUOTE_BYTE = Buffer.from('"');

/** A CSV field with minimal RFC 4180 quoting on raw bytes: quoted only if it holds `,` `"` CR or LF; `"` doubled. */
export function csvField(bytes: Buffer): Buffer {
  // Native scans (includes/indexOf): a per-byte JS loop over 65 MB of reviews costs seconds.
  if (!bytes.includes(QUOTE) && !bytes.includes(0x2c) && !bytes.includes(0x0a) && !bytes.includes(0x0d)) return bytes;
  const parts: Buffer[] = [QUOTE_BYTE];
  let start = 0;
  for (let q = bytes.indexOf(QUOTE); q !== -1; q = bytes.indexOf(QUOTE, start)) {
    parts.push(bytes.subarray(start, q + 1), QUOTE_BYTE); // each quote, then its double
    start = q + 1;
  }
  parts.push(bytes.subarray(start), QUOTE_BYTE);
  return Buffer.concat(parts);
}

/** Where the converted rows go; the caller owns hashing, compression and atomic renames. */
export interface ImdbSinks {
  csv: Writable;
  index: Writable;
}

/** What the conversion saw, for progress and sanity messages. */
export interface ImdbConvertSummary {
  rows: number;
  counts: Record<ImdbSplit, Record<ImdbLabel, number>>;
  skippedEntries: number;
}

export interface ImdbConvertOptions {
  /** Scratch file holding review bytes between reading the archive and writing the shuffled rows; removed by the caller. */
  spillPath: string;
  log?: (line: string) => void;
  /** Names the archive in error messages (e.g. its URL). */
  sourceName?: string;
}

interface Spilled extends ImdbReviewRef {
  offset: number;
  length: number;
}

/**
 * Streams a gzipped aclImdb tarball into the CSV and index sinks (both are ended on success).
 * Review bytes go to a spill file rather than memory because the output order needs every review first.
 */
export async function convertAclImdb(archive: Readable, sinks: ImdbSinks, opts: ImdbConvertOptions): Promise<ImdbConvertSummary> {
  const source = opts.sourceName ?? 'archive';
  const { reviews, skipped } = await spillReviews(archive, opts.spillPath, source, opts.log);
  if (reviews.length === 0) {
    throw new InvalidDataError(`${source}: no aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt entries found; is this aclImdb_v1.tar.gz?`);
  }
  const counts = { train: { negative: 0, positive: 0 }, test: { negative: 0, positive: 0 } };
  const csv = new BufferedWriter(sinks.csv);
  const index = new BufferedWriter(sinks.index);
  csv.push(Buffer.from(IMDB_CSV_HEADER));
  index.push(Buffer.from(IMDB_INDEX_HEADER));
  // Synchronous preads: 50,000 small reads from the page cache are several times faster than awaiting each.
  const spill = openSync(opts.spillPath, 'r');
  let row = 0;
  try {
    for (const split of SPLITS) {
      for (const r of imdbRowOrder(reviews.filter((x) => x.split === split))) {
        row++;
        counts[split][r.label]++;
        const text = Buffer.allocUnsafe(r.length);
        if (readSync(spill, text, 0, r.length, r.offset) !== r.length) throw new InternalError(`spill file ${opts.spillPath} is short at ${r.path}`);
        csv.push(csvField(text), Buffer.from(`,${r.label}\n`));
        // The dax44/AMLM train/val reassignment follows no rule we can reproduce, so that column stays empty.
        index.push(Buffer.from(`${row},${split},${r.label},${r.rating},${r.path},\n`));
        if (csv.full) await csv.flush();
        if (index.full) await index.flush();
      }
    }
  } finally {
    closeSync(spill);
  }
  await Promise.all([csv.end(), index.end()]);
  return { rows: row, counts, skippedEntries: skipped };
}

async function spillReviews(
  archive: Readable,
  spillPath: string,
  source: string,
  log?: (line: string) => void,
): Promise<{ reviews: Spilled[]; skipped: number }> {
  const gunzip = createGunzip();
  const extract = tar.extract();
  const fail = (err: Error) => extract.destroy(new Error(`${source}: ${err.message}`));
  archive.on('error', fail);
  gunzip.on('error', fail);
  archive.pipe(gunzip).pipe(extract);

  const spill = createWriteStream(spillPath);
  const spillClosed = once(spill, 'close');
  // Marked handled here; a spill error still surfaces where spillClosed is awaited.
  spillClosed.catch(() => undefined);
  const reviews: Spilled[] = [];
  const seen = new Set<string>();
  let skipped = 0;
  let offset = 0;
  try {
    for await (const entry of extract) {
      const ref = entry.header.type === 'file' ? parseAclImdbPath(entry.header.name) : null;
      if (!ref) {
        skipped++;
        entry.resume();
        continue;
      }
      const key = `${ref.split}/${ref.label}/${ref.id}`;
      if (seen.has(key)) throw new InvalidDataError(`${source}: review ${key} appears twice (second copy: ${ref.path})`);
      seen.add(key);
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks);
      // once() rejects if the spill stream errors (disk full), which ends the loop with that error.
      if (!spill.write(text)) await once(spill, 'drain');
      reviews.push({ ...ref, offset, length: text.length });
      offset += text.length;
      if (reviews.length % 10_000 === 0) log?.(`imdb: read ${count(reviews.length)} reviews`);
    }
  } catch (err) {
    // Stop the download too; nothing reads it any more.
    archive.destroy();
    gunzip.destroy();
    spill.destroy();
    throw err;
  }
  spill.end();
  await spillClosed;
  log?.(`imdb: read ${count(reviews.length)} reviews (${count(offset)} bytes of text), skipped ${count(skipped)} other entries`);
  return { reviews, skipped };
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** Coalesces many small row writes into ~1 MiB chunks and honours the sink's backpressure. */
class BufferedWriter {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly sink: Writable) {}

  /** True once enough is buffered that the caller should await flush(). */
  get full(): boolean {
    return this.size >= 1 << 20;
  }

  push(...bufs: Buffer[]): void {
    for (const b of bufs) {
      this.parts.push(b);
      this.size += b.length;
    }
  }

  async flush(): Promise<void> {
    if (this.size === 0) return;
    if (this.sink.destroyed) throw this.sink.errored ?? new Error('output stream closed before the conversion finished');
    const chunk = Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    if (!this.sink.write(chunk)) await once(this.sink, 'drain');
  }

  async end(): Promise<void> {
    await this.flush();
    this.sink.end();
  }
}
