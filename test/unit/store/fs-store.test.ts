import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { describeBlobStoreContract } from '../../support/blob-store-contract.js';

async function tempStore(): Promise<{ store: FsBlobStore; cleanup(): Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'textshift-fs-store-'));
  return { store: new FsBlobStore(root), cleanup: () => rm(root, { recursive: true, force: true }) };
}

describeBlobStoreContract('FsBlobStore (local folder)', { create: tempStore, largeBodyBytes: 6 * 1024 * 1024 });

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
