import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { describeBlobStoreContract } from '../../support/blob-store-contract.js';

async function tempStore(): Promise<{ store: FsBlobStore; cleanup(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'textshift-fs-store-'));
  return { store: new FsBlobStore(root), cleanup: () => rm(root, { recursive: true, force: true }) };
}

describeBlobStoreContract('FsBlobStore (local folder)', {
  create: tempStore,
  largeBodyBytes: 6 * 1024 * 1024,
  versioned: false,
  modifiedAt: async (store, key) => (await stat((store as FsBlobStore).pathOf(key))).mtimeMs,
});

describe('FsBlobStore (local folder): files on disk', () => {
  it('an aborted putStream leaves no temporary file beside the target', async () => {
    const { store, cleanup } = await tempStore();
    try {
      const failing = new Readable({
        read() {
          this.push(Buffer.alloc(1024));
          this.destroy(new Error('stream aborted'));
        },
      });
      await expect(store.putStream('runs/r1/checkpoints.zip', failing)).rejects.toThrow('stream aborted');
      expect(await readdir(join(store.root, 'runs', 'r1'))).toEqual([]);
    } finally {
      await cleanup();
    }
  });

  it('a streamed put stores chunks larger than its 1 MiB writes byte for byte', async () => {
    const { store, cleanup } = await tempStore();
    try {
      const big = Buffer.from(Array.from({ length: 2.5 * 1024 * 1024 + 3 }, (_, i) => (i * 31 + (i >> 20)) & 255));
      const parts = [big, Buffer.from('tail'), big.subarray(0, 1024 * 1024)];
      await store.putStream('runs/r1/models/m.safetensors', Readable.from(parts, { objectMode: false }));
      expect((await store.getOrThrow('runs/r1/models/m.safetensors')).equals(Buffer.concat(parts))).toBe(true);
    } finally {
      await cleanup();
    }
  });

  it('streams in chunks of chunkBytes when asked, and in small ones otherwise (a reader that stops early has read little)', async () => {
    const { store, cleanup } = await tempStore();
    try {
      await store.put('runs/r1/models/m.safetensors', Buffer.alloc(3 * 1024 * 1024 + 5, 7));
      const sizes = async (options?: { chunkBytes: number }) => {
        const out: number[] = [];
        for await (const chunk of await store.getStream('runs/r1/models/m.safetensors', options)) out.push((chunk as Buffer).length);
        return out;
      };
      expect(await sizes({ chunkBytes: 1024 * 1024 })).toEqual([1024 * 1024, 1024 * 1024, 1024 * 1024, 5]);
      expect((await sizes())[0]).toBe(64 * 1024);
    } finally {
      await cleanup();
    }
  });

  it('an in-place edit that keeps the size and restores the modification time (cp -p) still changes the ETag', async () => {
    const { store, cleanup } = await tempStore();
    try {
      // A whole-second time, which utimes sets exactly (it cannot restore a nanosecond one).
      const copied = new Date('2024-05-01T12:00:00Z');
      const path = store.pathOf('models/m/onnx/model.onnx');
      await store.put('models/m/onnx/model.onnx', Buffer.alloc(1024, 1));
      await utimes(path, copied, copied);
      const before = await store.head('models/m/onnx/model.onnx');
      await writeFile(path, Buffer.alloc(1024, 2));
      await utimes(path, copied, copied);
      const after = await store.head('models/m/onnx/model.onnx');
      expect(after?.size).toBe(before?.size);
      expect((await stat(path)).mtimeMs).toBe(copied.getTime());
      expect(after?.etag).not.toBe(before?.etag);
    } finally {
      await cleanup();
    }
  });
});

describe('FsBlobStore (local folder): conditional puts across processes and abandoned write locks', () => {
  async function opened(): Promise<FsBlobStore> {
    const { store, cleanup } = await tempStore();
    onTestFinished(cleanup);
    return store;
  }
  /** The write lock a conditional put of `key` takes (fs-write-lock.ts). */
  const lockOf = (store: FsBlobStore, key: string) => `${store.pathOf(key)}.write-lock.partial`;

  /** The pid of a process that has exited (so no process on this host has it, barring reuse). */
  async function deadPid(): Promise<number> {
    const child = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => child.on('exit', r));
    return child.pid!;
  }

  it('three processes appending with ifMatch at once lose no append', async () => {
    const store = await opened();
    await store.put('runs/r1/manifest.json', '[]');
    const writer = fileURLToPath(new URL('./fs-cas-writer.ts', import.meta.url));
    const run = promisify(execFile);
    // Started together once every process has loaded (tsx takes about a second).
    const startAt = String(Date.now() + 3_000);
    await Promise.all(['a', 'b', 'c'].map((w) => run(process.execPath, ['--import', 'tsx', writer, store.root, 'runs/r1/manifest.json', w, '40', startAt])));
    const seen = JSON.parse((await store.getOrThrow('runs/r1/manifest.json')).toString()) as string[];
    expect(seen).toHaveLength(120);
    expect(new Set(seen).size).toBe(120);
    // Each writer's appends are in its own order.
    for (const w of ['a', 'b', 'c']) expect(seen.filter((s) => s.startsWith(`${w}.`))).toEqual(Array.from({ length: 40 }, (_, i) => `${w}.${i}`));
    expect(await readdir(join(store.root, 'runs', 'r1'))).toEqual(['manifest.json']);
  }, 60_000);

  it('a write lock left by a process that died is broken, and the put goes through', async () => {
    const store = await opened();
    await store.put('m.json', 'v1');
    const etag = (await store.head('m.json'))!.etag!;
    await writeFile(lockOf(store, 'm.json'), JSON.stringify({ pid: await deadPid(), host: hostname(), nonce: 'dead', at: new Date().toISOString() }));
    const t0 = Date.now();
    await store.put('m.json', 'v2', { ifMatch: etag });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect((await store.get('m.json'))?.toString()).toBe('v2');
    expect(await readdir(store.root)).toEqual(['m.json']);
  });

  it('a write lock left empty (its creator died before writing it) is broken once it is older than 30 s', async () => {
    const store = await opened();
    await store.put('m.json', 'v1');
    const etag = (await store.head('m.json'))!.etag!;
    await writeFile(lockOf(store, 'm.json'), '');
    const minuteAgo = new Date(Date.now() - 60_000);
    await utimes(lockOf(store, 'm.json'), minuteAgo, minuteAgo);
    await store.put('m.json', 'v2', { ifMatch: etag });
    expect((await store.get('m.json'))?.toString()).toBe('v2');
    expect(await readdir(store.root)).toEqual(['m.json']);
  });

  it('a write lock held by a live process makes the put wait until it is released', async () => {
    const store = await opened();
    await store.put('m.json', 'v1');
    const etag = (await store.head('m.json'))!.etag!;
    // This process is alive: its lock must be waited for, never broken.
    await writeFile(lockOf(store, 'm.json'), JSON.stringify({ pid: process.pid, host: hostname(), nonce: 'live', at: new Date().toISOString() }));
    let done = false;
    const put = store.put('m.json', 'v2', { ifMatch: etag }).then(() => (done = true));
    await new Promise((r) => setTimeout(r, 300));
    expect(done).toBe(false);
    expect((await store.get('m.json'))?.toString()).toBe('v1');
    await rm(lockOf(store, 'm.json'));
    await put;
    expect((await store.get('m.json'))?.toString()).toBe('v2');
  });
});
