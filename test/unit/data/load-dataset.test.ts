import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FileSpec, parseExperiment, type DatasetConfig } from '../../../src/config/experiment.js';
import { resolveDataRoot } from '../../../src/data/data-root.js';
import { DataError, MissingDatasetError, displayName } from '../../../src/data/errors.js';
import { fileOrderLines, partLabels, planDataset, streamParts, type DatasetPlan } from '../../../src/data/load-dataset.js';
import type { Example } from '../../../src/data/read-table.js';
import { splitPositions } from '../../../src/data/split.js';
import { readTable } from '../../fixtures/data/read-table.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { tempStore } from '../../fixtures/data/temp-store.js';
import { dataRoot } from '../../support/data.js';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const experimentPath = join(repoRoot, 'experiments', 'sst2-imdb.json');
const experiment = parseExperiment(readFileSync(experimentPath, 'utf8'), experimentPath);

interface PartSummary {
  n: number;
  labelCounts: number[];
  examplesSha256: string;
  firstText: string;
}
// Written by scripts/fixtures/real_splits.py: Python csv + scikit-learn on the shared data (counts and digests only).
const reference = JSON.parse(readFileSync(new URL('../../fixtures/data/real-splits.json', import.meta.url), 'utf8')) as Record<
  'sst2' | 'imdb',
  Record<'train' | 'val' | 'test', PartSummary>
>;

/** The same summary real_splits.py computes. */
function summarize(rows: Example[]): PartSummary {
  return {
    n: rows.length,
    labelCounts: [0, 1].map((c) => rows.filter((r) => r.label === c).length),
    examplesSha256: createHash('sha256')
      .update(rows.map((r) => `${r.label}\t${r.text}`).join('\n'))
      .digest('hex'),
    firstText: rows[0]!.text.slice(0, 60),
  };
}

describe('planDataset split steps', () => {
  const rowsTsv = (n: number, offset = 0) => Array.from({ length: n }, (_, i) => `row ${i + offset}\t${(i + offset) % 2}`).join('\n') + '\n';
  const spec = (splits: DatasetConfig['splits']): DatasetConfig => ({
    files: {
      all: FileSpec.parse({ path: 'd/all.tsv', format: 'tsv', header: false, text: 0, label: 1 }),
      extra: FileSpec.parse({ path: 'd/extra.tsv', format: 'tsv', header: false, text: 0, label: 1 }),
    },
    labels: { '0': 0, '1': 1 },
    classNames: ['even', 'odd'],
    splits,
    onBadRow: 'error',
  });

  it('applies steps in order to row indices; a consumed part disappears; file parts not split stay', async () => {
    const store = await tempStore({ 'd/all.tsv': rowsTsv(50), 'd/extra.tsv': rowsTsv(3, 100) });
    const plan = await planDataset(
      'toy',
      spec([
        { from: 'all', testSize: 0.2, train: 'rest', test: 'test' },
        { from: 'rest', testSize: 0.25, train: 'train', test: 'val' },
      ]),
      store,
      7,
    );
    expect(Object.keys(plan.parts).sort()).toEqual(['extra', 'test', 'train', 'val']);
    const first = splitPositions(50, 0.2, 7);
    const inner = splitPositions(first.train.length, 0.25, 7);
    const second = { train: inner.train.map((i) => first.train[i]!), test: inner.test.map((i) => first.train[i]!) };
    expect(plan.parts.test).toEqual({ file: 'all', rows: first.test.slice() });
    expect(plan.parts.train).toEqual({ file: 'all', rows: second.train });
    expect(plan.parts.val).toEqual({ file: 'all', rows: second.test });
    expect([plan.parts.train!.rows.length, plan.parts.val!.rows.length, plan.parts.test!.rows.length]).toEqual([30, 10, 10]);
    expect(plan.parts.extra).toEqual({ file: 'extra', rows: Uint32Array.of(0, 1, 2) });
    expect(partLabels(plan, plan.parts.train!)).toEqual(Int32Array.from(second.train, (r) => r % 2));
    expect(partLabels(plan, plan.parts.extra!)).toEqual(Int32Array.of(0, 1, 0));
    expect(plan.files).toEqual([
      { part: 'all', key: 'd/all.tsv', sha256: createHash('sha256').update(rowsTsv(50)).digest('hex'), bytes: Buffer.byteLength(rowsTsv(50)), rows: 50 },
      { part: 'extra', key: 'd/extra.tsv', sha256: createHash('sha256').update(rowsTsv(3, 100)).digest('hex'), bytes: Buffer.byteLength(rowsTsv(3, 100)), rows: 3 },
    ]);
  });

  it('streamParts hands each part its rows in file order; fileOrderLines finds each split-order row there', async () => {
    const store = await tempStore({ 'd/all.tsv': rowsTsv(50), 'd/extra.tsv': rowsTsv(3, 100) });
    const toy = spec([{ from: 'all', testSize: 0.2, train: 'train', test: 'test' }]);
    const plan = await planDataset('toy', toy, store, 7);
    const streamed: Record<string, string[]> = {};
    await streamParts(toy, store, plan, plan.parts, (part, example) => {
      (streamed[part] ??= []).push(example.text);
    });
    for (const [name, part] of Object.entries(plan.parts)) {
      const offset = name === 'extra' ? 100 : 0;
      const rows = Array.from(part.rows);
      expect(streamed[name]).toEqual([...rows].sort((a, b) => a - b).map((r) => `row ${r + offset}`));
      const lines = Array.from(fileOrderLines(part));
      expect(lines.map((line) => streamed[name]![line])).toEqual(rows.map((r) => `row ${r + offset}`));
    }
    // Only the parts asked for are handed over.
    const onlyTest: string[] = [];
    await streamParts(toy, store, plan, { test: plan.parts.test! }, (part) => {
      onlyTest.push(part);
    });
    expect(onlyTest).toEqual(Array(10).fill('test'));
  });

  it('a file within holdTextChars keeps its texts and streamParts hands the same rows without reading it again', async () => {
    const store = await tempStore({ 'd/all.tsv': rowsTsv(50), 'd/extra.tsv': rowsTsv(3, 100) });
    const toy = spec([{ from: 'all', testSize: 0.2, train: 'train', test: 'test' }]);
    const collect = async (plan: DatasetPlan, from: typeof store, dataset = toy) => {
      const out: string[] = [];
      await streamParts(dataset, from, plan, plan.parts, (part, e) => void out.push(`${part}:${e.text}:${e.label}`));
      return out;
    };
    const unreadable = Object.assign(Object.create(store) as typeof store, {
      getStream: () => Promise.reject(new Error('read again')),
    });
    const streamed = await collect(await planDataset('toy', toy, store, 7), store);
    // all.tsv: 50 rows "row N\t0|1\n", 440 bytes, 290 characters of text (10 of 5, 40 of 6); extra.tsv 30 bytes.
    const held = await planDataset('toy', toy, store, 7, 440);
    expect(held.textChars).toEqual({ all: 290, extra: 21 });
    expect(held.texts.all).toHaveLength(50);
    expect(await collect(held, unreadable)).toEqual(streamed);
    // Its stored size says it may not fit: not held, read again.
    const bySize = await planDataset('toy', toy, store, 7, 439);
    expect(bySize.texts.all).toBeUndefined();
    expect(bySize.texts.extra).toHaveLength(3);
    await expect(collect(bySize, unreadable)).rejects.toThrow('read again');
    expect(await collect(bySize, store)).toEqual(streamed);
    // A gzip file that decompresses past the bound (more than GZIP_EXPANSION) is dropped once it passes it.
    const long = Array.from({ length: 10 }, (_, i) => `${'x'.repeat(2000)}\t${i % 2}`).join('\n') + '\n';
    await store.put('d/all.tsv.gz', gzipSync(long));
    const gz: DatasetConfig = { ...toy, files: { all: FileSpec.parse({ path: 'd/all.tsv.gz', format: 'tsv', header: false, text: 0, label: 1 }) } };
    const bomb = await planDataset('toy', gz, store, 7, 5000);
    expect((await store.head('d/all.tsv.gz'))!.size * 5).toBeLessThanOrEqual(5000);
    expect(bomb.texts.all).toBeUndefined();
    expect(bomb.textChars.all).toBe(20_000);
    expect(await collect(bomb, store, gz)).toHaveLength(10);
  });

  it('streamParts fails naming the file when it changed since planDataset read it', async () => {
    const store = await tempStore({ 'd/all.tsv': rowsTsv(10), 'd/extra.tsv': rowsTsv(2) });
    const toy = spec([]);
    const plan = await planDataset('toy', toy, store, 1);
    await store.put('d/all.tsv', rowsTsv(10).replace('row 9\t1', 'row 9!\t1'));
    const changed = await streamParts(toy, store, plan, plan.parts, () => {}).catch((e: unknown) => e);
    expect(changed).toBeInstanceOf(DataError);
    expect((changed as Error).message).toBe(
      `${displayName(store, 'd/all.tsv')}: changed while being read: sha256 ${plan.files[0]!.sha256} on the first read, ` +
        `${createHash('sha256').update(rowsTsv(10).replace('row 9\t1', 'row 9!\t1')).digest('hex')} on the second; run again to read the new file`,
    );
    await store.put('d/all.tsv', rowsTsv(10).replace('row 3\t1', 'row 3\t0'));
    await expect(streamParts(toy, store, plan, plan.parts, () => {})).rejects.toThrow(/all\.tsv: changed while being read: row 4 differs from the first read/);
  });

  it('a step may reuse the consumed part name as an output', async () => {
    const store = await tempStore({ 'd/all.tsv': rowsTsv(10), 'd/extra.tsv': rowsTsv(2) });
    const plan = await planDataset('toy', spec([{ from: 'all', testSize: 0.3, train: 'all', test: 'held' }]), store, 1);
    expect([plan.parts.all!.rows.length, plan.parts.held!.rows.length]).toEqual([7, 3]);
  });

  it('rejects bad steps with the dataset, step and the parts that exist', async () => {
    const store = await tempStore({ 'd/all.tsv': rowsTsv(10), 'd/extra.tsv': rowsTsv(2) });
    await expect(planDataset('toy', spec([{ from: 'nope', testSize: 0.2, train: 'a', test: 'b' }]), store, 1)).rejects.toThrow(
      'dataset "toy" splits[0]: "from" is "nope", which is no part at this step; expected one of "all", "extra"',
    );
    await expect(planDataset('toy', spec([{ from: 'all', testSize: 0.2, train: 'a', test: 'extra' }]), store, 1)).rejects.toThrow(
      'dataset "toy" splits[0]: output "extra" would replace the existing part "extra"; choose another name',
    );
    await expect(planDataset('toy', spec([{ from: 'extra', testSize: 0.6, train: 'a', test: 'b' }]), store, 1)).rejects.toThrow(
      'dataset "toy" splits[0]: with 2 rows and testSize 0.6 the train part would be empty',
    );
  });

  it('rejects a label mapped to a class index classNames does not have', async () => {
    const store = await tempStore({ 'd/all.tsv': rowsTsv(4), 'd/extra.tsv': rowsTsv(2) });
    const bad = { ...spec([]), labels: { '0': 0, '1': 2 } };
    await expect(planDataset('toy', bad, store, 1)).rejects.toThrow('dataset "toy": label "1" maps to class 2, but classNames has 2 entries (indexes 0-1)');
  });
});

describe('the default experiment on the shared data', () => {
  // Resolved per test so a missing data folder fails these tests with its message, not the whole file.
  const sharedStore = () => new FsBlobStore(dataRoot());

  /** Each part's examples in split order, from the plan's row indices into the files read whole. */
  async function partsOf(name: 'sst2' | 'imdb'): Promise<{ plan: DatasetPlan; parts: Record<string, Example[]> }> {
    const spec = experiment.datasets[name]!;
    const store = sharedStore();
    const plan = await planDataset(name, spec, store, experiment.seed);
    const files: Record<string, Example[]> = {};
    for (const [part, file] of Object.entries(spec.files)) files[part] = (await readTable(store, file, { labels: spec.labels, onBadRow: spec.onBadRow })).examples;
    const parts = Object.fromEntries(Object.entries(plan.parts).map(([part, { file, rows }]) => [part, Array.from(rows, (r) => files[file]![r]!)]));
    return { plan, parts };
  }

  it('SST-2: 5536/1384/1821 rows, the same rows and order as Python csv + sklearn', async () => {
    const { plan, parts } = await partsOf('sst2');
    expect(Object.keys(parts).sort()).toEqual(['test', 'train', 'val']);
    for (const part of ['train', 'val', 'test'] as const) expect(summarize(parts[part]!)).toEqual(reference.sst2[part]);
    expect(reference.sst2.train.labelCounts).toEqual([2639, 2897]);
    expect(reference.sst2.test.labelCounts).toEqual([912, 909]);
    expect(plan.files).toEqual([
      { part: 'full', key: 'sst2/train.tsv', sha256: '4bdc38ba1cf151a802f72b0ba750d22404ad7103b6597b8c39b875a9f28f0b9c', bytes: 720260, rows: 6920 },
      { part: 'test', key: 'sst2/test.tsv', sha256: 'c204bc7652500e47fab2711fbebdf87f7491ec6aad8a2b806346f7d53f4634e0', bytes: 188750, rows: 1821 },
    ]);
    expect(plan.skipped).toEqual({ count: 0, first: [] });
  });

  it('IMDB: 50,000 rows -> 32000/8000/10000, the same rows and order as Python csv + sklearn', async () => {
    const { plan, parts } = await partsOf('imdb');
    expect(plan.files).toEqual([
      { part: 'all', key: 'imdb.csv.gz', sha256: '92c9d866084ccc3cf229258821a6b28c8f5df09fee75049043c304bb008fa7e1', bytes: 26462367, rows: 50000 },
    ]);
    expect(Object.keys(parts).sort()).toEqual(['test', 'train', 'val']);
    for (const part of ['train', 'val', 'test'] as const) expect(summarize(parts[part]!)).toEqual(reference.imdb[part]);
    expect([reference.imdb.train.n, reference.imdb.val.n, reference.imdb.test.n]).toEqual([32000, 8000, 10000]);
  });
});

describe('resolveDataRoot', () => {
  const base = mkdtempSync(join(tmpdir(), 'textshift-root-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  const repo = join(base, 'repo');
  const shared = join(base, 'shared', 'data');
  const own = join(base, 'own');
  mkdirSync(repo, { recursive: true });
  mkdirSync(shared, { recursive: true });
  mkdirSync(own, { recursive: true });

  it('tries --data-root, TEXTSHIFT_DATA, ./data, ../shared/data in that order', () => {
    expect(resolveDataRoot({ flag: '../own', env: { TEXTSHIFT_DATA: shared }, cwd: repo })).toMatchObject({ dir: own, source: '--data-root' });
    expect(resolveDataRoot({ env: { TEXTSHIFT_DATA: own }, cwd: repo })).toMatchObject({ dir: own, source: 'TEXTSHIFT_DATA' });
    expect(resolveDataRoot({ env: {}, cwd: repo })).toMatchObject({ dir: shared, source: '../shared/data' });
    mkdirSync(join(repo, 'data'));
    expect(resolveDataRoot({ env: {}, cwd: repo })).toMatchObject({ dir: join(repo, 'data'), source: './data' });
    rmSync(join(repo, 'data'), { recursive: true });
  });

  it('a named folder that does not exist is an error, not a silent fallback', () => {
    expect(() => resolveDataRoot({ flag: 'missing', env: {}, cwd: repo })).toThrow(MissingDatasetError);
    expect(() => resolveDataRoot({ env: { TEXTSHIFT_DATA: '/no/such/dir' }, cwd: repo })).toThrow(
      'data folder /no/such/dir (from TEXTSHIFT_DATA) not found. Tried:\n  - /no/such/dir (TEXTSHIFT_DATA)\n',
    );
  });

  it('when nothing exists, lists every path tried and how to fetch the data', () => {
    const lonely = join(base, 'lonely', 'repo');
    mkdirSync(lonely, { recursive: true });
    expect(() => resolveDataRoot({ env: {}, cwd: lonely })).toThrow(
      'a data folder (--data-root, TEXTSHIFT_DATA, ./data or ../shared/data) not found. Tried:\n' +
        `  - ${join(lonely, 'data')} (./data)\n` +
        `  - ${resolve(lonely, '..', 'shared', 'data')} (../shared/data)\n` +
        'The data can be fetched with `textshift data fetch --dest DIR`; then pass --data-root DIR or set TEXTSHIFT_DATA=DIR.',
    );
  });
});
