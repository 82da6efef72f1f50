import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeRunReport } from '../../../src/report/index.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { sampleManifest, sampleResults, sampleUsage } from '../../fixtures/report/sample-run.js';

describe('writeRunReport', () => {
  let dir: string;
  let store: FsBlobStore;
  const results = sampleResults();
  const root = `runs/${results.runId}`;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'textshift-report-'));
    store = new FsBlobStore(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes every report file, confusion SVGs and event files, and returns their keys', async () => {
    const { keys, cost } = await writeRunReport(store, results.runId, {
      results, manifest: sampleManifest(), usage: sampleUsage(), generatedAt: '2026-11-26T05:27:16Z', host: 'h',
    });
    expect(keys.resultsJson).toBe(`${root}/report/results.json`);
    expect(keys.costJson).toBe(`${root}/report/cost.json`);
    expect((await readdir(join(dir, root, 'report'))).sort()).toEqual(
      ['confusion', 'cost.json', 'cost.md', 'report.html', 'results.csv', 'results.json', 'results.md'],
    );
    expect((await readdir(join(dir, root, 'report/confusion'))).sort()).toEqual(
      ['bow_1__imdb.svg', 'bow_1__sst2.svg', 'bow_2__imdb.svg', 'bow_2__sst2.svg', 'use_1__imdb.svg', 'use_1__sst2.svg', 'use_2__imdb.svg', 'use_2__sst2.svg'],
    );
    expect(keys.confusion).toHaveLength(8);
    for (const key of [...keys.confusion, ...keys.logs, keys.html, keys.resultsMd, keys.resultsCsv, keys.costMd!]) {
      expect((await store.head(key))?.size, key).toBeGreaterThan(0);
    }
    // Event files are timed from each family's train stage start: train:bow started 05:21:39.121Z = 1795670499.
    expect(keys.logs[0]).toBe(`${root}/logs/bow_1/events.out.tfevents.1795670499.h`);
    // bow_2 starts after bow_1's 45.97 s of training.
    expect(keys.logs[1]).toBe(`${root}/logs/bow_2/events.out.tfevents.1795670545.h`);
    expect(JSON.parse((await store.getOrThrow(keys.resultsJson)).toString())).toEqual(results);
    const costJson = JSON.parse((await store.getOrThrow(keys.costJson!)).toString());
    expect(costJson.total).toBeCloseTo(cost!.total, 12);
    expect(costJson.label).toBe('estimate: what this run would cost on AWS');
    for (const l of costJson.lines) expect(Object.keys(l)).toEqual(expect.arrayContaining(['quantity', 'unit', 'unitPrice', 'cost']));
    const html = (await store.getOrThrow(keys.html)).toString();
    expect(html).toContain('data-testid="acc-bow_2-imdb" data-value="0.8826">0.8826<');
    expect(html).not.toMatch(/(src|href)="https?:/);
    expect(html).not.toContain('<script');
  });

  it('leaves out the cost files when no usage is given', async () => {
    const { keys, cost } = await writeRunReport(store, results.runId, { results, manifest: sampleManifest() });
    expect(cost).toBeUndefined();
    expect(keys.costJson).toBeUndefined();
    expect(await store.head(`${root}/report/cost.json`)).toBeUndefined();
    expect((await store.getOrThrow(keys.html)).toString()).toContain('No usage was recorded for this run.');
  });

  it('refuses results of another run and an unusable manifest, naming it', async () => {
    await expect(writeRunReport(store, 'other-run', { results, manifest: sampleManifest() })).rejects.toThrow(
      `results belong to run ${results.runId}, not other-run`,
    );
    await expect(writeRunReport(store, results.runId, { results, manifest: { status: 'succeeded' } })).rejects.toThrow(
      `runs/${results.runId}/manifest.json: manifest has no runId`,
    );
    expect(await store.list('runs/')).toEqual([]);
  });
});
