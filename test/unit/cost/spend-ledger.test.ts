// Admission across runs on a folder store (the same checks run against S3 in test/integration/spend-ledger.test.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { describeSpendLedger } from '../../support/spend-ledger.js';

describeSpendLedger('FsBlobStore (local folder)', async () => {
  const root = await mkdtemp(join(tmpdir(), 'textshift-spend-'));
  return { store: new FsBlobStore(root), cleanup: () => rm(root, { recursive: true, force: true }) };
});
