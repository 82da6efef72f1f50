import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DataError, MissingDatasetError, displayName } from '../../../src/data/errors.js';
import type { TableOptions } from '../../../src/data/read-table.js';
import { readTable } from '../../fixtures/data/read-table.js';
import { planDataset } from '../../../src/data/load-dataset.js';
import { FileSpec, type DatasetConfig, type FileConfig } from '../../../src/config/experiment.js';
import type { FsBlobStore } from '../../../src/store/fs-store.js';
import { tempStore } from '../../fixtures/data/temp-store.js';

const strict: TableOptions = { labels: { '0': 0, '1': 1 }, onBadRow: 'error' };
const skip: TableOptions = { ...strict, onBadRow: 'skip' };
const tsv = (path: string): FileConfig => FileSpec.parse({ path, format: 'tsv', header: false, text: 0, label: 1 });
const csv = (path: string): FileConfig => FileSpec.parse({ path, format: 'csv', header: true, text: 'review', label: 'sentiment' });
const sentiment: TableOptions = { labels: { negative: 0, positive: 1 }, onBadRow: 'error' };

/** The DataError a read fails with. */
async function failure(store: FsBlobStore, spec: FileConfig, options: TableOptions): Promise<DataError> {
  const err = await readTable(store, spec, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DataError);
  return err as DataError;
}

describe('readTable errors name the file, line and column', () => {
  it('unknown label: says the value and the allowed ones', async () => {
    const store = await tempStore({ 'sst2/train.tsv': 'good film\t1\nbad film\t0\nodd film\t2\n' });
    const err = await failure(store, tsv('sst2/train.tsv'), strict);
    expect(err.message).toBe(`${displayName(store, 'sst2/train.tsv')}:3: unknown label "2" in column 1; expected one of "0", "1"`);
    expect(err).toMatchObject({ file: `${store.url}/sst2/train.tsv`, line: 3, field: 1 });
  });

  it('empty text (also whitespace only)', async () => {
    const store = await tempStore({ 'e.tsv': 'fine\t1\n\t0\n', 'w.csv': 'review,sentiment\nok,positive\n"   ",negative\n' });
    const empty = await failure(store, tsv('e.tsv'), strict);
    expect(empty.message).toBe(`${displayName(store, 'e.tsv')}:2: empty text in column 0`);
    expect(empty).toMatchObject({ line: 2, field: 0 });
    const blank = await failure(store, csv('w.csv'), sentiment);
    expect(blank.message).toBe(`${displayName(store, 'w.csv')}:3: empty text in column "review"`);
  });

  it('invalid UTF-8: a fatal decoder reports the line instead of inserting U+FFFD', async () => {
    const bytes = Buffer.concat([Buffer.from('fine\t1\nalso fine\t0\ncaf'), Buffer.from([0xe9]), Buffer.from(' au lait\t1\n')]);
    const store = await tempStore({ 'latin1.tsv': bytes });
    const err = await failure(store, tsv('latin1.tsv'), strict);
    expect(err.message).toBe(`${displayName(store, 'latin1.tsv')}:3: invalid UTF-8 in column 0`);
    expect(err).toMatchObject({ line: 3, field: 0 });
  });

  it('missing column: the header lacks the named column', async () => {
    const store = await tempStore({ 'h.csv': 'text,sentiment\nok,positive\n' });
    const err = await failure(store, csv('h.csv'), sentiment);
    expect(err.message).toBe(`${displayName(store, 'h.csv')}:1: header has no column "review" (the text column); found "text", "sentiment"`);
    expect(err).toMatchObject({ line: 1, field: 'review' });
  });

  it('missing column: a row has too few fields', async () => {
    const store = await tempStore({ 'short.tsv': 'fine\t1\nno label here\n' });
    const err = await failure(store, tsv('short.tsv'), strict);
    expect(err.message).toBe(`${displayName(store, 'short.tsv')}:2: missing column 1: the row has 1 field`);
    expect(err).toMatchObject({ line: 2, field: 1 });
  });

  it('a row with more fields than the header (e.g. an unquoted comma)', async () => {
    const store = await tempStore({ 'wide.csv': 'review,sentiment\nok,positive\ngood, really,positive\n' });
    const err = await failure(store, csv('wide.csv'), sentiment);
    expect(err.message).toBe(`${displayName(store, 'wide.csv')}:3: the row has 3 fields; expected 2 (as the header)`);
  });

  it('a column name on a file without header is a spec error naming the column', async () => {
    const store = await tempStore({ 'n.tsv': 'ok\t1\n' });
    const err = await failure(store, { ...tsv('n.tsv'), text: 'review' }, strict);
    expect(err.message).toBe(`${displayName(store, 'n.tsv')}: text column "review" is a name, but the file has no header (header: false); give a 0-based index`);
  });

  it('malformed quoting: a closing quote followed by other text', async () => {
    const store = await tempStore({ 'q.csv': 'review,sentiment\nok,positive\n"bad "quote" here",negative\n' });
    const err = await failure(store, csv('q.csv'), sentiment);
    expect(err.message).toBe(
      `${displayName(store, 'q.csv')}:3: malformed quoting in column 0: a closing quote is followed by "q" instead of a delimiter or the end of the line; ` +
        'a field with a quote must be quoted whole, with each inner quote doubled ("")',
    );
    expect(err).toMatchObject({ line: 3, field: 0 });
  });

  it('malformed quoting: a quote inside an unquoted field', async () => {
    const store = await tempStore({ 'q.csv': 'review,sentiment\nok,positive\nsays "hi",negative\n' });
    const err = await failure(store, csv('q.csv'), sentiment);
    expect(err.message).toMatch(/q\.csv:3: malformed quoting in column 0: a quote inside an unquoted field; /);
  });

  it('malformed quoting: a quoted field never closed names the line where its row starts', async () => {
    const store = await tempStore({ 'q.csv': 'review,sentiment\nok,positive\n"never closed,negative\nmore,positive\nlast,negative\n' });
    const err = await failure(store, csv('q.csv'), sentiment);
    expect(err.message).toBe(
      `${displayName(store, 'q.csv')}:3: malformed quoting: the row starting on this line opens a quoted field that is never closed (end of file at line 5)`,
    );
  });

  it('an empty file, and a file with a header but no data rows', async () => {
    const store = await tempStore({ 'empty.tsv': '', 'header.csv.gz': 'review,sentiment\n' });
    const empty = await failure(store, tsv('empty.tsv'), strict);
    expect(empty.message).toBe(`${displayName(store, 'empty.tsv')}: no data rows: the file is empty`);
    expect(empty.line).toBeUndefined();
    const header = await failure(store, csv('header.csv.gz'), sentiment);
    expect(header.message).toBe(`${displayName(store, 'header.csv.gz')}: no data rows: the file has a header but no data rows`);
  });

  it('a .gz file that is not gzip, or is truncated', async () => {
    const whole = gzipSync('review,sentiment\n' + 'fine,positive\n'.repeat(1000));
    const store = await tempStore({ 'plain.csv.gz': Buffer.from('review,sentiment\nok,positive\n'), 'cut.csv.gz': whole.subarray(0, whole.length - 12) });
    const plain = await failure(store, csv('plain.csv.gz'), sentiment);
    expect(plain.message).toMatch(/plain\.csv\.gz: not a valid gzip file \(incorrect header check\)$/);
    const cut = await failure(store, csv('cut.csv.gz'), sentiment);
    expect(cut.message).toMatch(/cut\.csv\.gz: not a valid gzip file \(unexpected end of file\)$/);
  });

  it('a missing file is a MissingDatasetError naming the path tried and how to fetch the data', async () => {
    const store = await tempStore({});
    const err = await readTable(store, tsv('sst2/train.tsv'), strict).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingDatasetError);
    expect((err as Error).message).toBe(
      `data file "sst2/train.tsv" not found. Tried:\n  - ${displayName(store, 'sst2/train.tsv')}\n` +
        'The data can be fetched with `textshift data fetch --dest DIR`; then pass --data-root DIR or set TEXTSHIFT_DATA=DIR.',
    );
  });
});

describe('onBadRow: skip', () => {
  const messy = [
    'good\t1',
    'unknown label\t7',
    '\t0',
    'no label',
    'bad\t0',
    'three\tfields\t1',
    '',
  ].join('\n');

  it('leaves bad rows out and returns them as {file, line, reason}', async () => {
    const bytes = Buffer.concat([Buffer.from(messy), Buffer.from([0xff, 0x09, 0x31, 0x0a])]);
    const store = await tempStore({ 'm.tsv': bytes });
    const read = await readTable(store, tsv('m.tsv'), skip);
    expect(read.examples).toEqual([
      { text: 'good', label: 1 },
      { text: 'bad', label: 0 },
    ]);
    const file = `${store.url}/m.tsv`;
    expect(read.skipped).toEqual([
      { file, line: 2, reason: 'unknown label "7" in column 1; expected one of "0", "1"' },
      { file, line: 3, reason: 'empty text in column 0' },
      { file, line: 4, reason: 'missing column 1: the row has 1 field' },
      { file, line: 6, reason: 'the row has 3 fields; expected 2 (as line 1)' },
      { file, line: 7, reason: 'invalid UTF-8 in column 0' },
    ]);
  });

  it('counts every skipped row but lists only the first 20 (memory stays bounded however many rows are bad)', async () => {
    const store = await tempStore({ 'many.tsv': `good\t1\n${'bad\t9\n'.repeat(25)}` });
    const read = await readTable(store, tsv('many.tsv'), skip);
    expect([read.rows, read.skippedCount, read.skipped.length]).toEqual([1, 25, 20]);
    expect(read.skipped.at(-1)).toMatchObject({ line: 21 });
  });

  it('planDataset sums skipped rows over files and counts only kept rows', async () => {
    const store = await tempStore({ 'a.tsv': messy, 'b.tsv': 'x\t0\ny\t9\nz\t1\n' });
    const spec: DatasetConfig = {
      files: { a: tsv('a.tsv'), b: tsv('b.tsv') },
      labels: { '0': 0, '1': 1 },
      classNames: ['neg', 'pos'],
      splits: [],
      onBadRow: 'skip',
    };
    const plan = await planDataset('messy', spec, store, 42);
    expect(plan.files.map((f) => [f.part, f.rows])).toEqual([
      ['a', 2],
      ['b', 2],
    ]);
    expect(plan.skipped.count).toBe(5);
    expect(plan.skipped.first).toHaveLength(5);
    expect(plan.skipped.first.at(-1)).toEqual({ file: `${store.url}/b.tsv`, line: 2, reason: 'unknown label "9" in column 1; expected one of "0", "1"' });
  });

  it('still fails on file-level problems: every row bad, broken quoting, missing header column', async () => {
    const store = await tempStore({
      'allbad.tsv': 'a\t5\nb\t6\n',
      'q.csv': 'review,sentiment\n"bad "quote",positive\nok,negative\n',
      'h.csv': 'text,label\nok,positive\n',
    });
    const all = await failure(store, tsv('allbad.tsv'), skip);
    expect(all.message).toBe(
      `${displayName(store, 'allbad.tsv')}: no data rows: all 2 data rows are bad and were skipped (first: line 1: unknown label "5" in column 1; expected one of "0", "1")`,
    );
    const skipCsv: TableOptions = { ...sentiment, onBadRow: 'skip' };
    expect((await failure(store, csv('q.csv'), skipCsv)).message).toMatch(/q\.csv:2: malformed quoting/);
    expect((await failure(store, csv('h.csv'), skipCsv)).message).toMatch(/h\.csv:1: header has no column "review"/);
  });
});
