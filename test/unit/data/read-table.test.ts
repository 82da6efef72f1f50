import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readTable } from '../../../src/data/read-table.js';
import type { FileConfig } from '../../../src/config/experiment.js';
import { tempStore } from '../../fixtures/data/temp-store.js';

const binary = { labels: { negative: 0, positive: 1 }, onBadRow: 'error' as const };
const csvSpec = (path: string): FileConfig => ({ path, format: 'csv', header: true, text: 'review', label: 'sentiment' });

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
    const read = await readTable(store, { path: 's.tsv', format: 'tsv', header: false, text: 0, label: 1 }, { labels: { '0': 0, '1': 1 }, onBadRow: 'error' });
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
    const read = await readTable(store, { path: 'three.csv', format: 'csv', header: true, text: 'body', label: 'stars' }, { labels, onBadRow: 'error' });
    expect(read.examples).toEqual([
      { text: 'so so', label: 1 },
      { text: 'great film', label: 2 },
      { text: 'dull', label: 0 },
      { text: 'fine', label: 2 },
    ]);
    const byIndex = await readTable(store, { path: 'three.csv', format: 'csv', header: true, text: 2, label: 1 }, { labels, onBadRow: 'error' });
    expect(byIndex.examples).toEqual(read.examples);
  });

  it('does not take inherited object keys such as "constructor" as labels', async () => {
    const store = await tempStore({ 'p.tsv': 'fine\tconstructor\n' });
    await expect(readTable(store, { path: 'p.tsv', format: 'tsv', header: false, text: 0, label: 1 }, { labels: { a: 0, b: 1 }, onBadRow: 'error' })).rejects.toThrow(
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
