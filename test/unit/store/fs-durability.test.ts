// A folder store's write is durable before it is visible: the temp file's bytes are flushed (fsync) before the rename
// that publishes them, and the folder is flushed after it, so a power cut after a put leaves the old object or the
// whole new one, never an empty or torn file under the key's name. Observed at the file system calls.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FsBlobStore } from '../../../src/store/fs-store.js';

/** The file system calls that order a write: `sync <path>` (fsync of a handle opened on path) and `rename <from>`. */
const calls = vi.hoisted(() => [] as string[]);

vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...fs,
    open: async (...args: Parameters<typeof fs.open>) => {
      const handle = await fs.open(...args);
      const sync = handle.sync.bind(handle);
      handle.sync = async () => {
        calls.push(`sync ${String(args[0])}`);
        return sync();
      };
      return handle;
    },
    rename: async (from: string, to: string) => {
      calls.push(`rename ${from}`);
      return fs.rename(from, to);
    },
    link: async (from: string, to: string) => {
      calls.push(`link ${from}`);
      return fs.link(from, to);
    },
  };
});

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'textshift-durable-'));
  calls.length = 0;
});
afterEach(() => rm(root, { recursive: true, force: true }));

/** The calls of one put: the temp file flushed, then renamed (or linked) into place, then the folder flushed. */
function expectDurable(publish: 'rename' | 'link', path: string): void {
  expect(calls).toHaveLength(3);
  const [syncFile, published, syncFolder] = calls as [string, string, string];
  const temp = syncFile.slice('sync '.length);
  expect(temp).toMatch(new RegExp(`^${path.replace(/[.]/g, '\\.')}\\.\\d+-[0-9a-f]{8}-[0-9a-f]{12}\\.partial$`));
  expect(published).toBe(`${publish} ${temp}`);
  expect(syncFolder).toBe(`sync ${dirname(path)}`);
}

describe('FsBlobStore writes are flushed before they are published', () => {
  it('put', async () => {
    const store = new FsBlobStore(root);
    await store.put('runs/r/manifest.json', '{}');
    expectDurable('rename', store.pathOf('runs/r/manifest.json'));
  });

  it('putStream', async () => {
    const store = new FsBlobStore(root);
    await store.putStream('runs/r/checkpoints.zip', Readable.from([Buffer.alloc(3 << 20, 1), Buffer.alloc(5, 2)]));
    expectDurable('rename', store.pathOf('runs/r/checkpoints.zip'));
    expect((await store.head('runs/r/checkpoints.zip'))?.size).toBe((3 << 20) + 5);
  });

  it('a conditional create and a conditional replace', async () => {
    const store = new FsBlobStore(root);
    await store.put('runs/r/lock.json', 'a', { ifNoneMatch: '*' });
    expectDurable('link', store.pathOf('runs/r/lock.json'));
    calls.length = 0;
    await store.put('runs/r/lock.json', 'b', { ifMatch: (await store.head('runs/r/lock.json'))!.etag! });
    expectDurable('rename', store.pathOf('runs/r/lock.json'));
    expect((await store.get('runs/r/lock.json'))?.toString()).toBe('b');
  });
});
