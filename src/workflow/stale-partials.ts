import { PREFIXES, runKeys } from '../run/keys.js';
import type { Reporter } from '../run/reporter.js';
import type { BlobStore } from '../store/blob-store.js';
import { FsBlobStore } from '../store/fs-store.js';

/**
 * At the start of a local run or resume: removes the temp files (`*.partial`) an interrupted writer left under the
 * run's folder and the feature cache (a kill -9 mid-put leaves its temp body for good, a 10 MB one for
 * checkpoints.zip), keeping any a live writer owns (see FsBlobStore.removeStalePartials). Says what it removed. A
 * bucket leaves no such files (an aborted multipart upload expires by the bucket's lifecycle rule).
 */
export async function removeStalePartials(store: BlobStore, runId: string, reporter: Reporter): Promise<void> {
  if (!(store instanceof FsBlobStore)) return;
  const paths: string[] = [];
  let bytes = 0;
  for (const prefix of [`${runKeys(runId).root}/`, PREFIXES.cache]) {
    const removed = await store.removeStalePartials(prefix);
    paths.push(...removed.paths);
    bytes += removed.bytes;
  }
  if (paths.length === 0) return;
  const size = bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${bytes} bytes`;
  reporter.log(`run ${runId}: removed ${paths.length} temp file${paths.length === 1 ? '' : 's'} (${size}) left by an interrupted write: ${paths.join(', ')}`);
}
