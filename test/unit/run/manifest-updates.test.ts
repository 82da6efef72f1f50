// Concurrent writers of one run's manifest on a folder store (the same checks run against S3 in
// test/integration/manifest-updates.test.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { describeManifestUpdates } from '../../support/manifest-updates.js';

describeManifestUpdates('FsBlobStore (local folder)', async () => {
  const root = await mkdtemp(join(tmpdir(), 'textshift-manifest-'));
  return { store: new FsBlobStore(root), cleanup: () => rm(root, { recursive: true, force: true }) };
});
