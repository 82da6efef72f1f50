import type { Readable } from 'node:stream';
import yazl from 'yazl';
import type { BlobStore } from '../store/blob-store.js';
import { runKeys } from '../run/keys.js';
import { MissingInputError } from '../errors/index.js';

/**
 * Streams every object under `runs/<id>/models/` into `runs/<id>/checkpoints.zip` (paths relative to models/).
 * Entries are opened one at a time, so memory stays flat however large the checkpoints; weights are stored
 * uncompressed (float32 barely deflates), metadata deflated. The store's atomic putStream means a reader never
 * sees a partial archive. Returns the archive key and entry count.
 */
export async function writeCheckpointArchive(store: BlobStore, runId: string): Promise<{ key: string; entries: number }> {
  const keys = runKeys(runId);
  const prefix = `${keys.root}/models/`;
  const objects = (await store.list(prefix)).filter((o) => !o.key.endsWith('.result.json'));
  if (objects.length === 0) throw new MissingInputError(`run ${runId}: no checkpoints under ${prefix} to archive`);
  const zip = new yazl.ZipFile();
  for (const o of objects) {
    zip.addReadStreamLazy(
      o.key.slice(prefix.length),
      { compress: !o.key.endsWith('.safetensors'), size: o.size, mtime: new Date(0) },
      (cb) => {
        store.getStream(o.key).then(
          (s) => cb(null, s),
          (err: unknown) => cb(err, undefined as unknown as NodeJS.ReadableStream),
        );
      },
    );
  }
  zip.end();
  await store.putStream(keys.checkpointsZip, zip.outputStream as Readable);
  return { key: keys.checkpointsZip, entries: objects.length };
}
