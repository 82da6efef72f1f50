import { mkdtemp, readdir, rm } from 'node:fs/promises';
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
});
