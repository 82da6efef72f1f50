// `textshift run experiments/sst2-imdb-use.json --quick` end to end through the real CLI on the real data (BoW and
// USE-lite families, featurize on the worker pool): the printed table, the object layout of docs/guide.md, checkpoints.zip contents, the manifest, and that a second run of
// the same command reuses everything instead of training again.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Results } from '../../src/run/records.js';
import type { Manifest } from '../../src/run/manifest.js';
import { runCli } from '../support/cli.js';
import { zipEntries } from '../support/zip.js';

const out = mkdtempSync(join(tmpdir(), 'textshift-quick-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('textshift run --quick (the seed lab with USE-lite, real data)', () => {
  let runDir = '';
  let stdout = '';

  it('runs to completion and prints the four-row results table', async () => {
    const r = await runCli(['run', 'experiments/sst2-imdb-use.json', '--quick', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    stdout = r.stdout;
    expect(stdout).toMatch(/model\s+sst2\s+imdb/);
    expect(stdout).toMatch(/bow_1\s+0\.\d{4}\s+0\.\d{4}/);
    expect(stdout).toMatch(/bow_2\s+0\.\d{4}\s+0\.\d{4}/);
    expect(stdout).toMatch(/use_1\s+0\.\d{4}\s+0\.\d{4}/);
    expect(stdout).toMatch(/use_2\s+0\.\d{4}\s+0\.\d{4}/);
    expect(stdout).toMatch(/estimate: what this run would cost on AWS/);
    const runs = readdirSync(join(out, 'runs'));
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatch(/^sst2-imdb-use-quick-[0-9a-f]{12}$/);
    runDir = join(out, 'runs', runs[0]!);
  });

  it('writes the documented object layout and sane results', () => {
    for (const f of ['manifest.json', 'checkpoints.zip', 'report/results.md', 'report/results.csv', 'report/results.json', 'report/report.html', 'report/cost.json', 'report/cost.md', 'splits/sst2/train.jsonl.gz', 'splits/imdb/test.jsonl.gz']) {
      expect(statSync(join(runDir, f)).size, f).toBeGreaterThan(0);
    }
    expect(readdirSync(join(out, 'cache', 'features')).filter((f) => f.endsWith('.csr')).length).toBeGreaterThan(0);
    expect(readdirSync(join(out, 'cache', 'features')).filter((f) => f.endsWith('.npy')).length).toBeGreaterThan(0);
    expect(readdirSync(join(runDir, 'logs', 'bow_1'))[0]).toMatch(/^events\.out\.tfevents\./);
    const results = JSON.parse(readFileSync(join(runDir, 'report', 'results.json'), 'utf8')) as Results;
    const acc = (model: string, dataset: string) => results.evaluations.find((e) => e.model === model && e.dataset === dataset)!.accuracy;
    // Quick caps train on 2000 SST-2 / 3000 IMDB examples: well above chance, below the full run.
    expect(acc('bow_1', 'sst2')).toBeGreaterThan(0.7);
    expect(acc('bow_2', 'imdb')).toBeGreaterThan(0.8);
    // USE-lite vectors of 1000 SST-2 sentences / 300 IMDB reviews under --quick: well above chance.
    expect(acc('use_1', 'sst2')).toBeGreaterThan(0.7);
    expect(acc('use_2', 'imdb')).toBeGreaterThan(0.65);
    expect(results.evaluations.find((e) => e.model === 'bow_2' && e.dataset === 'imdb')!.n).toBe(2000);
    for (const m of results.models) expect(m.epochs.map((e) => e.epoch)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(readFileSync(join(runDir, 'report', 'results.csv'), 'utf8').split('\n')[0]).toBe('model,sst2,imdb');
  });

  it('records config, input sha256s, stage status and timings in the manifest', () => {
    const m = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')) as Manifest;
    expect(m.status).toBe('succeeded');
    expect(m.quick).toBe(true);
    expect(m.config.training.sparseAdam).toBe('lazy');
    const sst2Train = m.inputs.sst2!.find((f) => f.key === 'sst2/train.tsv')!;
    expect(sst2Train.sha256).toBe('4bdc38ba1cf151a802f72b0ba750d22404ad7103b6597b8c39b875a9f28f0b9c');
    expect(m.inputs.imdb![0]!.sha256).toBe('92c9d866084ccc3cf229258821a6b28c8f5df09fee75049043c304bb008fa7e1');
    for (const s of ['prepare', 'featurize', 'train:bow', 'train:use', 'report']) {
      expect(m.stages[s]!.status, s).toBe('succeeded');
      expect(m.stages[s]!.seconds, s).toBeGreaterThan(0);
    }
    expect(m.splits.bow).toEqual({ 'sst2/train': 2000, 'sst2/val': 500, 'sst2/test': 1000, 'imdb/train': 3000, 'imdb/val': 1000, 'imdb/test': 2000 });
    expect(m.splits.use).toEqual({ 'sst2/train': 1000, 'sst2/val': 250, 'sst2/test': 500, 'imdb/train': 300, 'imdb/val': 100, 'imdb/test': 300 });
    // Every text of the use family embedded exactly once.
    expect(m.encoded!.use!.texts).toBe(1000 + 250 + 500 + 300 + 100 + 300);
  });

  it('archives every checkpoint: epochs 2/4/6/8/10 and best of each model', async () => {
    const names = await zipEntries(join(runDir, 'checkpoints.zip'));
    for (const model of ['bow_1', 'bow_2', 'use_1', 'use_2']) {
      for (const dir of ['epoch_2', 'epoch_4', 'epoch_6', 'epoch_8', 'epoch_10']) {
        for (const f of ['model.safetensors', 'optimizer.safetensors', 'state.json']) expect(names).toContain(`${model}/${dir}/${f}`);
      }
      expect(names).toContain(`${model}/best/model.safetensors`);
      expect(names).toContain(`${model}/best/state.json`);
    }
  });

  it('a second run of the same command reuses the finished run', async () => {
    const r = await runCli(['run', 'experiments/sst2-imdb-use.json', '--quick', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/already prepared/);
    expect(r.stderr).toMatch(/bow_1: already trained/);
    expect(r.stderr).toMatch(/bow_2: already trained/);
    expect(r.stderr).toMatch(/use_2: already trained/);
    const rows = (text: string) => text.split('\n').filter((l) => /^(bow|use)_/.test(l));
    expect(rows(r.stdout)).toHaveLength(4);
    expect(rows(r.stdout)).toEqual(rows(stdout));
  });
});
