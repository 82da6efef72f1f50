import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { describeModelCacheContract } from '../../support/model-cache-contract.js';

describeModelCacheContract('folder store', {
  create: async () => {
    const root = await mkdtemp(join(tmpdir(), 'textshift-model-store-'));
    return { store: new FsBlobStore(root), cleanup: () => rm(root, { recursive: true, force: true }) };
  },
});
