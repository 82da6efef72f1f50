// Two `textshift run` processes on the same run id: the second refuses to start, naming the run and the process that
// holds it, and the first finishes untouched. Real CLI processes, real SST-2/IMDB data (small --quick caps).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/run/manifest.js';
import { runCli, startCli } from '../support/cli.js';

const experiment = 'test/fixtures/experiments/tiny.json';
const out = mkdtempSync(join(tmpdir(), 'textshift-run-lock-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('two runs of one run id', () => {
  it('the second exits 1 naming the run and the holder\'s pid; the first finishes and releases its lease', async () => {
    const args = ['run', experiment, '--quick', '--out', out, '--run-id', 'tiny-locked'];
    const lock = join(out, 'runs', 'tiny-locked', 'lock.json');
    const first = startCli(args);
    let firstErr = '';
    first.stderr!.on('data', (d: Buffer) => (firstErr += d.toString()));
    const firstDone = new Promise<number | null>((r) => first.on('close', r));
    let firstExited = false;
    void firstDone.then(() => (firstExited = true));
    // The first run holds the lock from before Prepare until it ends.
    while (!existsSync(lock)) {
      if (firstExited) throw new Error(`the first run ended before it took its lock:\n${firstErr}`);
      await new Promise((r) => setTimeout(r, 20));
    }

    const second = await runCli(args);
    expect(firstExited, 'the first run finished before the second started; enlarge the tiny experiment').toBe(false);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`textshift run failed: run tiny-locked is already running: process ${first.pid} on ${hostname()} has held `);
    expect(second.stdout).toBe('');

    expect(await firstDone, firstErr).toBe(0);
    // Released when the run ends (the record keeps its fencing token for the next holder).
    expect(JSON.parse(readFileSync(lock, 'utf8'))).toMatchObject({ token: 1, releasedAt: expect.any(String) });
    const manifest = JSON.parse(readFileSync(join(out, 'runs', 'tiny-locked', 'manifest.json'), 'utf8')) as Manifest;
    expect(manifest.status).toBe('succeeded');
    expect(Object.keys(manifest.stages).sort()).toEqual(['featurize', 'prepare', 'report', 'train:bow']);
  });
});
