// kill -9 in the middle of a put leaves the put's temp file (`*.partial`) for good; a local resume removes the run's
// stale ones, and only those: a temp file a live writer is still writing stays.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { lineReporter } from '../../../src/run/reporter.js';
import { removeStalePartials } from '../../../src/workflow/stale-partials.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function opened(): Promise<FsBlobStore> {
  const root = await mkdtemp(join(tmpdir(), 'textshift-partials-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  return new FsBlobStore(root);
}

/** A process putting `key` into the store, stopped mid-put (it has written 1 MiB of its temp file). */
async function writerMidPut(store: FsBlobStore, key: string): Promise<ChildProcess> {
  const writer = fileURLToPath(new URL('./fs-slow-writer.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', writer, store.root, key], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child.on('exit', r));
    }
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('writing') && resolve());
    child.on('exit', (code) => reject(new Error(`the writer exited with ${code} before writing`)));
  });
  return child;
}

const partialsIn = async (dir: string) => (await readdir(dir)).filter((f) => f.endsWith('.partial')).sort();

describe('stale temp files of a local run', () => {
  it('a put killed with SIGKILL leaves its temp file; the resume removes it and keeps the one a live writer owns', async () => {
    const store = await opened();
    const runId = 'sst2-imdb-0123456789ab';
    const killed = await writerMidPut(store, `runs/${runId}/checkpoints.zip`);
    const live = await writerMidPut(store, `runs/${runId}/report/results.csv`);
    const exited = new Promise((r) => killed.on('exit', r));
    killed.kill('SIGKILL');
    await exited;
    const runDir = join(store.root, 'runs', runId);
    const [left] = await partialsIn(runDir);
    expect(left).toMatch(new RegExp(`^checkpoints\\.zip\\.${killed.pid}-[0-9a-f]{8}-[0-9a-f]{12}\\.partial$`));
    expect((await stat(join(runDir, left!))).size).toBe(1 << 20);

    const lines: string[] = [];
    await removeStalePartials(store, runId, lineReporter((l) => lines.push(l)));
    expect(lines).toEqual([`run ${runId}: removed 1 temp file (1.0 MiB) left by an interrupted write: runs/${runId}/${left}`]);
    expect(await partialsIn(runDir)).toEqual([]);
    expect(await partialsIn(join(runDir, 'report'))).toEqual([expect.stringMatching(new RegExp(`^results\\.csv\\.${live.pid}-`))]);
    // Nothing else was touched, and a second pass finds nothing.
    await removeStalePartials(store, runId, lineReporter((l) => lines.push(l)));
    expect(lines).toHaveLength(1);
  }, 60_000);

  it('judges temp files that name no writer, or one on another host, by age; removes abandoned write locks; leaves other runs alone', async () => {
    const store = await opened();
    const runId = 'r-1';
    const dir = join(store.root, 'runs', runId, 'models', 'bow_1');
    const cache = join(store.root, 'cache', 'features');
    const other = join(store.root, 'runs', 'r-2');
    for (const d of [dir, cache, other]) await mkdir(d, { recursive: true });
    const hourAgo = new Date(Date.now() - 61 * 60 * 1000);
    const files = {
      // Named as before temp names carried their writer: old enough to be stale, and recent enough to be kept.
      oldStyleStale: join(dir, 'model.safetensors.a1b2c3d4e5f6.partial'),
      oldStyleRecent: join(dir, 'state.json.a1b2c3d4e5f6.partial'),
      otherHostRecent: join(cache, `x.npy.42-ffffffff-a1b2c3d4e5f6.partial`),
      otherRun: join(other, `manifest.json.a1b2c3d4e5f6.partial`),
      deadLock: join(dir, 'summary.json.write-lock.partial'),
    };
    for (const path of Object.values(files)) await writeFile(path, 'x');
    await writeFile(files.deadLock, JSON.stringify({ pid: 2 ** 22 + 1, host: hostname(), nonce: 'n', at: new Date().toISOString() }));
    for (const path of [files.oldStyleStale, files.otherRun]) await utimes(path, hourAgo, hourAgo);

    const lines: string[] = [];
    await removeStalePartials(store, runId, lineReporter((l) => lines.push(l)));
    expect(lines[0]).toMatch(/^run r-1: removed 2 temp files \(\d+ bytes\) left by an interrupted write: /);
    expect(lines[0]).toContain('runs/r-1/models/bow_1/model.safetensors.a1b2c3d4e5f6.partial');
    expect(lines[0]).toContain('runs/r-1/models/bow_1/summary.json.write-lock.partial');
    expect((await partialsIn(dir)).sort()).toEqual(['state.json.a1b2c3d4e5f6.partial']);
    expect(await partialsIn(cache)).toEqual(['x.npy.42-ffffffff-a1b2c3d4e5f6.partial']);
    expect(await partialsIn(other)).toEqual(['manifest.json.a1b2c3d4e5f6.partial']);
  });
});
