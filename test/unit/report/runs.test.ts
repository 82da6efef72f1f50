import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeRunReport } from '../../../src/report/index.js';
import { formatDuration } from '../../../src/format/text.js';
import { runSeconds, toManifestView } from '../../../src/report/manifest-view.js';
import { compareResults, comparisonText, formatDelta, listRuns, loadRunResults, runsText } from '../../../src/report/runs.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import type { Results } from '../../../src/run/records.js';
import { sampleManifest, sampleResults, sampleUsage } from '../../fixtures/report/sample-run.js';

const A = sampleResults();
// Run B: a later run of the same experiment where bow_2 did better on imdb (+0.0100) and use_2 was not trained.
const B: Results = {
  ...A,
  runId: 'sst2-imdb-20261127T090000Z-77aa01',
  models: A.models.filter((m) => m.model !== 'use_2'),
  evaluations: A.evaluations
    .filter((e) => e.model !== 'use_2')
    .map((e) => (e.model === 'bow_2' && e.dataset === 'imdb' ? { ...e, accuracy: 0.8926 } : e)),
};

describe('runs listing and comparison', () => {
  let dir: string;
  let store: FsBlobStore;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'textshift-runs-'));
    store = new FsBlobStore(dir);
    const mA = sampleManifest();
    await store.put(`runs/${A.runId}/manifest.json`, JSON.stringify(mA));
    await writeRunReport(store, A.runId, { results: A, manifest: mA, usage: sampleUsage(), host: 'h' });
    const mB = { ...mA, runId: B.runId, createdAt: '2026-11-27T09:00:00.000Z', updatedAt: '2026-11-27T09:03:30.000Z' };
    await store.put(`runs/${B.runId}/manifest.json`, JSON.stringify(mB));
    await writeRunReport(store, B.runId, { results: B, manifest: mB, host: 'h' });
    await store.put('runs/still-running/manifest.json', JSON.stringify({ ...mA, runId: 'still-running', status: 'running', createdAt: '2026-11-28T00:00:00.000Z', stages: {} }));
    await store.put('runs/broken/manifest.json', '{"runId": ');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lists runs newest first with status, duration, best accuracy per dataset and cost', async () => {
    const runs = await listRuns(store);
    expect(runs.map((r) => r.runId)).toEqual(['still-running', B.runId, A.runId, 'broken']);
    const a = runs.find((r) => r.runId === A.runId)!;
    expect(a).toMatchObject({ experiment: 'sst2-imdb', status: 'succeeded' });
    // createdAt 05:19:00.412 -> updatedAt 05:27:16.004 = 495.592 s
    expect(a.seconds).toBeCloseTo(495.592, 6);
    expect(a.headline).toEqual([
      { dataset: 'sst2', model: 'use_1', accuracy: 1485 / 1821 },
      { dataset: 'imdb', model: 'bow_2', accuracy: 0.8826 },
    ]);
    expect(a.cost?.label).toBe('estimate: what this run would cost on AWS');
    expect(runs.find((r) => r.runId === B.runId)!.cost).toBeUndefined();
    expect(runs.find((r) => r.runId === 'still-running')).toMatchObject({ status: 'running', headline: [], seconds: undefined });
    expect(runs.find((r) => r.runId === 'broken')!.problem).toContain('runs/broken/manifest.json');

    const text = runsText(runs);
    expect(text.split('\n')[0]).toMatch(/^run\s+experiment\s+status\s+duration\s+best test accuracy\s+cost\s+failure or problem$/);
    expect(text).toMatch(new RegExp(`${A.runId}\\s+sst2-imdb\\s+succeeded\\s+8m 16s\\s+sst2 0\\.8155 \\(use_1\\), imdb 0\\.8826 \\(bow_2\\)\\s+\\$0\\.\\d{4} est\\.`));
    expect(runsText([])).toBe('No runs found.\n');
  });

  it('compares two runs side by side with signed deltas over the union of models', async () => {
    const c = compareResults(await loadRunResults(store, A.runId), await loadRunResults(store, B.runId));
    expect(c.datasets).toEqual(['sst2', 'imdb']);
    const bow2 = c.rows.find((r) => r.model === 'bow_2')!.cells.find((x) => x.dataset === 'imdb')!;
    expect(bow2.a).toBe(0.8826);
    expect(bow2.b).toBe(0.8926);
    expect(bow2.delta).toBeCloseTo(0.01, 12);
    const use2 = c.rows.find((r) => r.model === 'use_2')!.cells[0]!;
    expect(use2).toMatchObject({ a: 1451 / 1821, b: undefined, delta: undefined });

    const lines = comparisonText(c).split('\n');
    expect(lines[0]).toBe(`A = ${A.runId}`);
    expect(lines[1]).toBe(`B = ${B.runId}`);
    expect(lines[2]).toMatch(/^model\s+sst2 A\s+sst2 B\s+sst2 Δ\s+imdb A\s+imdb B\s+imdb Δ$/);
    expect(lines.find((l) => l.startsWith('bow_2'))).toMatch(/^bow_2\s+0\.7963\s+0\.7963\s+0\.0000\s+0\.8826\s+0\.8926\s+\+0\.0100$/);
    expect(lines.find((l) => l.startsWith('use_2'))).toMatch(/^use_2\s+0\.7968\s+–\s+–\s+0\.8514\s+–\s+–$/);
  });

  it('explains a missing run and a run without results', async () => {
    await expect(loadRunResults(store, 'nope')).rejects.toThrow(`no run "nope" in ${store.url} (no runs/nope/manifest.json)`);
    await expect(loadRunResults(store, 'still-running')).rejects.toThrow('run still-running has no results yet (runs/still-running/report/results.json is missing)');
  });

  it('formats deltas with a sign and 4 decimals', () => {
    expect(formatDelta(0.01)).toBe('+0.0100');
    expect(formatDelta(-0.00404)).toBe('-0.0040');
    expect(formatDelta(0.00004)).toBe('0.0000');
    expect(formatDelta(undefined)).toBe('–');
  });
});

describe('manifest view', () => {
  it('reads the pipeline manifest: experiment object, createdAt/updatedAt, inputs per dataset', () => {
    const v = toManifestView(sampleManifest(), 'm.json');
    expect(v.experiment).toBe('sst2-imdb');
    expect(v.startedAt).toBe('2026-11-26T05:19:00.412Z');
    expect(v.endedAt).toBe('2026-11-26T05:27:16.004Z');
    expect(v.inputs[2]).toEqual({ dataset: 'imdb', name: 'imdb.csv.gz', sha256: '92c9d866084ccc3cf229258821a6b28c8f5df09fee75049043c304bb008fa7e1', bytes: 26462367, rows: 50000 });
    expect(Object.keys(v.stages)).toEqual(['prepare', 'featurize', 'train:bow', 'train:use', 'report']);
  });

  it('accepts the other spellings: id, experiment name, inputs as a list or a name -> sha256 map', () => {
    const v = toManifestView({ id: 'r1', experiment: 'e', status: 'failed', startedAt: '2026-01-01T00:00:00Z', inputs: { 'a.tsv': 'ab12' } }, 'm.json');
    expect(v).toMatchObject({ runId: 'r1', experiment: 'e', status: 'failed', inputs: [{ name: 'a.tsv', sha256: 'ab12' }], versions: {}, stages: {} });
    const w = toManifestView({ runId: 'r2', config: { name: 'from-config' }, inputs: [{ path: 'p.csv', sha256: 'cd', size: 3 }] }, 'm.json');
    expect(w).toMatchObject({ experiment: 'from-config', status: 'unknown', inputs: [{ name: 'p.csv', sha256: 'cd', bytes: 3 }] });
  });

  it('a running run has no end; its duration is the sum of its stage times', () => {
    const v = toManifestView({ runId: 'r', status: 'running', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:05:00Z',
      stages: { prepare: { status: 'succeeded', seconds: 7.5 }, featurize: { status: 'running' } } }, 'm.json');
    expect(v.endedAt).toBeUndefined();
    expect(runSeconds(v)).toBe(7.5);
  });

  it('names the file and field of an unusable manifest', () => {
    expect(() => toManifestView({ runId: 'r', stages: { prepare: { seconds: 1 } } }, 'runs/r/manifest.json')).toThrow(
      'runs/r/manifest.json: unreadable manifest: stages.prepare.status:',
    );
  });

  it('formats durations', () => {
    expect(formatDuration(12.34)).toBe('12.3s');
    expect(formatDuration(245)).toBe('4m 05s');
    expect(formatDuration(3723)).toBe('1h 02m 03s');
    expect(formatDuration(undefined)).toBe('–');
  });
});
