/** `models push` to an S3 bucket (the emulator), then read back the way a Featurize Lambda reads a model. */
import type { S3Client } from '@aws-sdk/client-s3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTestCheckpoint } from '../../scripts/onnx/test-model.js';
import { BertEncoder } from '../../src/features/bert/encoder.js';
import { materializeFolder } from '../../src/features/encoders.js';
import { importModel } from '../../src/models/import.js';
import { pushModel } from '../../src/models/push.js';
import { silentReporter } from '../../src/run/reporter.js';
import { S3BlobStore } from '../../src/store/s3-store.js';
import { createTestBucket, emulatorS3 } from './setup/aws.js';

let s3: S3Client;
let bucket: { bucket: string; remove(): Promise<void> };
let dir: string;
beforeAll(async () => {
  s3 = emulatorS3();
  bucket = await createTestBucket(s3);
  dir = await mkdtemp(join(tmpdir(), 'models-push-'));
});
afterAll(async () => {
  await bucket?.remove();
  s3?.destroy();
  await rm(dir, { recursive: true, force: true });
});

describe('models push', () => {
  it('uploads models/<name>/ with the graph last, and the bert family loads it from the bucket', async () => {
    await writeTestCheckpoint(join(dir, 'ckpt'), { layers: 1, hidden: 16, heads: 2, intermediate: 32 }, 9);
    const out = join(dir, 'out');
    await importModel({ folder: join(dir, 'ckpt'), name: 'org/tiny', out });
    const store = new S3BlobStore({ bucket: bucket.bucket, client: s3 });
    const keys = await pushModel(out, 'org/tiny', store, silentReporter);
    expect(keys).toEqual(['models/org/tiny/config.json', 'models/org/tiny/textshift-model.json', 'models/org/tiny/vocab.txt', 'models/org/tiny/onnx/model.onnx']);
    expect((await store.list('models/org/tiny/')).map((o) => o.key).sort()).toEqual([...keys].sort());

    const local = await BertEncoder.load(join(out, 'models', 'org', 'tiny'), { threads: 1 });
    const remote = await BertEncoder.load(await materializeFolder(store, 'models/org/tiny/'), { threads: 1 });
    try {
      const texts = ['a pushed model', 'gives the same vectors'];
      const [a, b] = await Promise.all([local.encode(texts, { poolings: ['mean'] }), remote.encode(texts, { poolings: ['mean'] })]);
      expect(Array.from(b.embeddings.mean)).toEqual(Array.from(a.embeddings.mean));
    } finally {
      await Promise.all([local.close(), remote.close()]);
    }
  });

  it('refuses a name with no installed model', async () => {
    await expect(pushModel(join(dir, 'out'), 'absent', new S3BlobStore({ bucket: bucket.bucket, client: s3 }), silentReporter)).rejects.toThrow(
      /models\/absent: no installed model \(textshift-model\.json missing\)/,
    );
  });
});
