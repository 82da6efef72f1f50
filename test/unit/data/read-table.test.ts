import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { DataError, displayName } from '../../../src/data/errors.js';
import { readTable } from '../../fixtures/data/read-table.js';
import { FileSpec, type FileConfig } from '../../../src/config/experiment.js';
import { tempStore } from '../../fixtures/data/temp-store.js';

const binary = { labels: { negative: 0, positive: 1 }, onBadRow: 'error' as const };
const file = (spec: z.input<typeof FileSpec>): FileConfig => FileSpec.parse(spec);
const csvSpec = (path: string): FileConfig => file({ path, format: 'csv', header: true, text: 'review', label: 'sentiment' });

// RFC 4180 cases: doubled quotes, delimiters and newlines inside quoted fields, spaces kept, an unquoted quote-free field.
const QUOTING_CSV = [
  'review,sentiment',
  '"He said ""wow"", then left",positive',
  '"a, b, c",negative',
  'plain text without quotes,positive',
  '"""Quoted"" title at the start",negative',
  '"two\nlines",positive',
  '" spaced ",negative',
  '',
].join('\n');
const QUOTING_EXPECTED = [
  { text: 'He said "wow", then left', label: 1 },
  { text: 'a, b, c', label: 0 },
  { text: 'plain text without quotes', label: 1 },
  { text: '"Quoted" title at the start', label: 0 },
  { text: 'two\nlines', label: 1 },
  { text: ' spaced ', label: 0 },
];

describe('readTable', () => {
  it('parses RFC 4180 quoting: embedded quotes, commas and newlines, spaces kept', async () => {
    const store = await tempStore({ 'q.csv': QUOTING_CSV });
    const read = await readTable(store, csvSpec('q.csv'), binary);
    expect(read.examples).toEqual(QUOTING_EXPECTED);
    expect(read.skipped).toEqual([]);
  });

  it('reads a .gz file the same as the plain one, hashing the stored (compressed) bytes', async () => {
    const store = await tempStore({ 'q.csv': QUOTING_CSV, 'q.csv.gz': QUOTING_CSV });
    const plain = await readTable(store, csvSpec('q.csv'), binary);
    const gz = await readTable(store, csvSpec('q.csv.gz'), binary);
    expect(gz.examples).toEqual(plain.examples);
    const stored = await store.getOrThrow('q.csv.gz');
    expect(stored.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(gz.bytes).toBe(stored.length);
    expect(gz.sha256).toBe(createHash('sha256').update(stored).digest('hex'));
    expect(plain.sha256).toBe(createHash('sha256').update(QUOTING_CSV).digest('hex'));
    expect(plain.bytes).toBe(Buffer.byteLength(QUOTING_CSV));
  });

  it('reads TSV without quoting: a " is plain text', async () => {
    const tsv = 'he said "hi" twice\t1\n"starts with a quote\t0\nends with one"\t1\n';
    const store = await tempStore({ 's.tsv': tsv });
    const read = await readTable(store, file({ path: 's.tsv', format: 'tsv', header: false, text: 0, label: 1 }), { labels: { '0': 0, '1': 1 }, onBadRow: 'error' });
    expect(read.examples).toEqual([
      { text: 'he said "hi" twice', label: 1 },
      { text: '"starts with a quote', label: 0 },
      { text: 'ends with one"', label: 1 },
    ]);
  });

  it('maps raw labels of any number of classes through the labels record, columns by name in any order', async () => {
    const csv = 'id,stars,body\n1,neutral,so so\n2,good,great film\n3,bad,dull\n4,good,fine\n';
    const store = await tempStore({ 'three.csv': csv });
    const labels = { bad: 0, neutral: 1, good: 2 };
    const read = await readTable(store, file({ path: 'three.csv', format: 'csv', header: true, text: 'body', label: 'stars' }), { labels, onBadRow: 'error' });
    expect(read.examples).toEqual([
      { text: 'so so', label: 1 },
      { text: 'great film', label: 2 },
      { text: 'dull', label: 0 },
      { text: 'fine', label: 2 },
    ]);
    const byIndex = await readTable(store, file({ path: 'three.csv', format: 'csv', header: true, text: 2, label: 1 }), { labels, onBadRow: 'error' });
    expect(byIndex.examples).toEqual(read.examples);
  });

  it('does not take inherited object keys such as "constructor" as labels', async () => {
    const store = await tempStore({ 'p.tsv': 'fine\tconstructor\n' });
    await expect(readTable(store, file({ path: 'p.tsv', format: 'tsv', header: false, text: 0, label: 1 }), { labels: { a: 0, b: 1 }, onBadRow: 'error' })).rejects.toThrow(
      'unknown label "constructor" in column 1; expected one of "a", "b"',
    );
  });

  it('strips a UTF-8 byte order mark and accepts CRLF line ends', async () => {
    const csv = '\uFEFFreview,sentiment\r\n"caf\u00e9, ok",positive\r\nbad,negative\r\n';
    const store = await tempStore({ 'bom.csv': csv });
    const read = await readTable(store, csvSpec('bom.csv'), binary);
    expect(read.examples).toEqual([
      { text: 'caf\u00e9, ok', label: 1 },
      { text: 'bad', label: 0 },
    ]);
  });

  it('ignores blank lines and counts physical lines across multi-line fields (line of a later bad row)', async () => {
    const csv = 'review,sentiment\n"one\ntwo\nthree",positive\n\nok,negative\n\n\nlast,maybe\n';
    const store = await tempStore({ 'lines.csv': csv });
    const err = await readTable(store, csvSpec('lines.csv'), binary).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'DataError', line: 9, field: 'sentiment' });
    expect((err as Error).message).toMatch(/lines\.csv:9: unknown label "maybe" in column "sentiment"; expected one of "negative", "positive"$/);
  });

  it('names the line a bad multi-line row starts on', async () => {
    const store = await tempStore({ 'multi.csv': 'review,sentiment\nok,positive\n"first\nsecond\nthird",maybe\n' });
    await expect(readTable(store, csvSpec('multi.csv'), binary)).rejects.toMatchObject({ line: 3 });
  });
});

describe('readTable line endings', () => {
  const tsv = (path: string) => file({ path, format: 'tsv', header: false, text: 0, label: 1 });
  const binaryTsv = { labels: { '0': 0, '1': 1 }, onBadRow: 'error' as const };

  it('reads LF, CRLF and CR line endings mixed in one file, in TSV and in CSV (quoted line breaks kept)', async () => {
    const store = await tempStore({
      'mixed.tsv': 'one\t1\r\ntwo\t0\nthree\t1\rfour\t0\r\nfive\t1\n',
      'mixed.csv': 'review,sentiment\r\n"a\r\nb",positive\nplain,negative\r"c\nd",positive\r\n',
    });
    expect((await readTable(store, tsv('mixed.tsv'), binaryTsv)).examples).toEqual([
      { text: 'one', label: 1 },
      { text: 'two', label: 0 },
      { text: 'three', label: 1 },
      { text: 'four', label: 0 },
      { text: 'five', label: 1 },
    ]);
    expect((await readTable(store, csvSpec('mixed.csv'), binary)).examples).toEqual([
      { text: 'a\r\nb', label: 1 },
      { text: 'plain', label: 0 },
      { text: 'c\nd', label: 1 },
    ]);
  });

  it('counts a CRLF as one line in the line of a later bad row, also when CR and LF arrive in different chunks', async () => {
    // The file store reads 64 KiB chunks: the first CRLF straddles the boundary.
    const first = `${'x'.repeat(64 * 1024 - 3)}\t1\r\n`;
    const store = await tempStore({ 'split.tsv': `${first}two\t0\rthree\t1\nbad\t7\n` });
    const err = await readTable(store, tsv('split.tsv'), binaryTsv).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/split\.tsv:4: unknown label "7" in column 1/);
  });
});

describe('readTable limits', () => {
  const tsv = (path: string, limits: { maxBytes?: number; maxRecordBytes?: number; maxRows?: number } = {}) =>
    file({ path, format: 'tsv', header: false, text: 0, label: 1, ...limits });
  const binaryTsv = { labels: { '0': 0, '1': 1 }, onBadRow: 'error' as const };

  it('has documented defaults: 4 GiB per file after decompression, 1 MiB per record, 10 million rows', () => {
    expect(tsv('a.tsv')).toMatchObject({ maxBytes: 4 * 2 ** 30, maxRecordBytes: 2 ** 20, maxRows: 10_000_000 });
  });

  it('a 10 MB line fails at its line, naming the file; with maxRecordBytes raised it is read', async () => {
    const long = `${'word '.repeat(2 * 1024 * 1024)}\t1`;
    const store = await tempStore({ 'long.tsv': `short\t0\r\n${long}\nafter\t1\n` });
    const err = await readTable(store, tsv('long.tsv'), binaryTsv).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err).toMatchObject({ file: `${store.url}/long.tsv`, line: 2 });
    expect((err as Error).message).toBe(
      `${displayName(store, 'long.tsv')}:2: the record starting on this line is longer than maxRecordBytes (1048576 bytes); ` +
        'raise "maxRecordBytes" in its file spec if its rows are meant to be this long',
    );
    const read = await readTable(store, tsv('long.tsv', { maxRecordBytes: 16 * 2 ** 20 }), binaryTsv);
    expect(read.examples.map((e) => e.text.length)).toEqual([5, long.length - 2, 5]);
  });

  it('the record cap counts delimiters and quoted line breaks: a line of many empty fields, a long quoted CSV record', async () => {
    const store = await tempStore({
      'tabs.tsv': `ok\t1\n${'\t'.repeat(5000)}\n`,
      'quoted.csv': `review,sentiment\nok,positive\n"${'line\n'.repeat(300)}",negative\n`,
    });
    await expect(readTable(store, tsv('tabs.tsv', { maxRecordBytes: 4096 }), binaryTsv)).rejects.toThrow(/tabs\.tsv:2: the record starting on this line is longer than maxRecordBytes \(4096 bytes\)/);
    const quoted = { ...csvSpec('quoted.csv'), maxRecordBytes: 1000 };
    await expect(readTable(store, quoted, binary)).rejects.toMatchObject({ line: 3, message: expect.stringMatching(/longer than maxRecordBytes \(1000 bytes\)/) });
    expect((await readTable(store, { ...quoted, maxRecordBytes: 1600 }, binary)).examples).toHaveLength(2);
  });

  it('a gzip bomb (3 MB expanding to 1.2 GiB) stops at maxBytes after decompression, naming the file, having read little of it', async () => {
    // 120 concatenated gzip members of 10 MiB of valid rows each (about 400:1; only a run of one byte reaches 1029:1).
    const rows = Buffer.from(`${'fine '.repeat(199)}film,positive\n`);
    const member = gzipSync(Buffer.concat(Array.from({ length: Math.ceil((10 * 2 ** 20) / rows.length) }, () => rows)), { level: 9 });
    const bomb = Buffer.concat([gzipSync('review,sentiment\n'), ...Array.from({ length: 120 }, () => member)]);
    expect(bomb.length).toBeGreaterThan(2.5e6);
    expect(bomb.length).toBeLessThan(4e6);
    const store = await tempStore({ 'bomb.csv.gz': bomb });
    let storedBytesRead = 0;
    const counting = Object.assign(Object.create(store) as typeof store, {
      async getStream(key: string) {
        const stream = await store.getStream(key);
        stream.on('data', (chunk: Buffer) => (storedBytesRead += chunk.length));
        return stream;
      },
    });
    const err = await readTable(counting, { ...csvSpec('bomb.csv.gz'), maxBytes: 8 * 2 ** 20 }, binary).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err).toMatchObject({ file: `${store.url}/bomb.csv.gz`, line: undefined });
    expect((err as Error).message).toBe(
      `${displayName(store, 'bomb.csv.gz')}: the file decompresses to more than maxBytes (8388608 bytes); raise "maxBytes" in its file spec if it is meant to be this large`,
    );
    expect(storedBytesRead).toBeLessThan(bomb.length / 10);
  });

  it('a bomb of one endless record stops at maxRecordBytes with the default limits', async () => {
    const member = gzipSync(Buffer.alloc(10 * 2 ** 20, 'a'), { level: 9 });
    const store = await tempStore({ 'zeros.tsv.gz': Buffer.concat([gzipSync('fine\t1\n'), ...Array.from({ length: 300 }, () => member)]) });
    await expect(readTable(store, tsv('zeros.tsv.gz'), binaryTsv)).rejects.toThrow(/zeros\.tsv\.gz:2: the record starting on this line is longer than maxRecordBytes \(1048576 bytes\)/);
  });

  it('a plain file over maxBytes, and more rows than maxRows, fail naming the file (and the first row over)', async () => {
    const body = 'a b\t0\nc d\t1\ne f\t0\ng h\t1\n';
    const store = await tempStore({ 'four.tsv': body });
    await expect(readTable(store, tsv('four.tsv', { maxBytes: body.length - 1 }), binaryTsv)).rejects.toThrow(
      `${displayName(store, 'four.tsv')}: the file is larger than maxBytes (${body.length - 1} bytes)`,
    );
    expect((await readTable(store, tsv('four.tsv', { maxBytes: body.length }), binaryTsv)).rows).toBe(4);
    await expect(readTable(store, tsv('four.tsv', { maxRows: 3 }), binaryTsv)).rejects.toThrow(
      `${displayName(store, 'four.tsv')}:4: more than maxRows (3) data rows; raise "maxRows" in its file spec if the file is meant to be this long`,
    );
    expect((await readTable(store, tsv('four.tsv', { maxRows: 4 }), binaryTsv)).rows).toBe(4);
  });
});

describe('readTable header', () => {
  it('rejects a duplicate column name, naming both columns', async () => {
    const store = await tempStore({ 'dup.csv': 'review,sentiment,review\ngood,positive,other\n' });
    const err = await readTable(store, csvSpec('dup.csv'), binary).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err).toMatchObject({ line: 1, field: 'review' });
    expect((err as Error).message).toBe(`${displayName(store, 'dup.csv')}:1: header names columns 0 and 2 both "review"; column names must be unique`);
  });
});
