// A run killed with SIGKILL mid-training and started again resumes from its latest checkpoint and ends with
// exactly the metrics of an uninterrupted run. Real CLI processes, real SST-2/IMDB data (small --quick caps).
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Results } from '../../src/run/records.js';
import { runCli, startCli } from '../support/cli.js';

const experiment = 'test/fixtures/experiments/tiny.json';
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'textshift-resume-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function onlyRun(out: string): string {
  const runs = readdirSync(join(out, 'runs'));
  expect(runs).toHaveLength(1);
  return join(out, 'runs', runs[0]!);
}

/** Results without wall-clock fields, which legitimately differ between runs. */
function metrics(r: Results) {
  return {
    models: r.models.map((m) => ({ model: m.model, bestEpoch: m.bestEpoch, best: m.bestValAccuracy, epochs: m.epochs.map(({ seconds: _s, ...e }) => e) })),
    evaluations: r.evaluations,
  };
}

describe('resume after kill -9', () => {
  it('a run killed during fine-tuning resumes from its checkpoint and matches an uninterrupted run', async () => {
    const whole = tempDir();
    const full = await runCli(['run', experiment, '--quick', '--out', whole]);
    expect(full.code, full.stderr).toBe(0);
    const expected = JSON.parse(readFileSync(join(onlyRun(whole), 'report', 'results.json'), 'utf8')) as Results;

    const out = tempDir();
    const child = startCli(['run', experiment, '--quick', '--out', out]);
    let exited = false;
    child.on('exit', () => (exited = true));
    // Kill as soon as stage 2 has written its epoch-2 checkpoint (epochs 3-6 are still to run).
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (exited) {
          clearInterval(timer);
          reject(new Error('the run finished before it could be killed; enlarge the tiny experiment'));
          return;
        }
        const runs = existsSync(join(out, 'runs')) ? readdirSync(join(out, 'runs')) : [];
        if (runs.some((r) => existsSync(join(out, 'runs', r, 'models', 'bow_2', 'epoch_2', 'state.json')))) {
          clearInterval(timer);
          child.kill('SIGKILL');
          resolve();
        }
      }, 10);
    });
    await new Promise((r) => child.on('close', r));
    const runDir = onlyRun(out);
    expect(existsSync(join(runDir, 'report', 'results.json'))).toBe(false);
    expect(existsSync(join(runDir, 'models', 'bow_2', 'summary.json'))).toBe(false);

    // The killed process left its run's lease held; the new run takes it over (the next fencing token) and says so.
    const lease = () => JSON.parse(readFileSync(join(runDir, 'lock.json'), 'utf8')) as { token: number; releasedAt?: string };
    expect(lease()).toMatchObject({ token: 1 });
    expect(lease().releasedAt).toBeUndefined();
    const again = await runCli(['run', experiment, '--quick', '--out', out]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(`took over its lease from process ${child.pid} on `);
    expect(lease()).toMatchObject({ token: 2, releasedAt: expect.any(String) });
    expect(again.stderr).toMatch(/bow_1: already trained/);
    expect(again.stderr).toMatch(/bow_2: resuming after epoch [2-6]/);
    const resumed = JSON.parse(readFileSync(join(runDir, 'report', 'results.json'), 'utf8')) as Results;
    expect(metrics(resumed)).toEqual(metrics(expected));
  });
});
