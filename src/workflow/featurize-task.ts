import { storeFromUrl } from '../store/index.js';
import type { BlobStore } from '../store/blob-store.js';
import type { TaskHandler } from './pool.js';
import { silentReporter } from '../run/reporter.js';
import type { FeaturizeOutput } from './stage-io.js';
import { featurize } from './stages/featurize.js';

/** One featurize shard for a pool worker: the stores by URL (they cannot cross threads) and the shard. */
export interface FeaturizeTask {
  storeUrl: string;
  dataUrl: string;
  runId: string;
  shardKey: string;
}

// Per worker: stores and the memo (parsed splits, the loaded encoder) live as long as the worker.
const stores = new Map<string, BlobStore>();
const memo = new Map<string, unknown>();
const store = (url: string): BlobStore => {
  if (!stores.has(url)) stores.set(url, storeFromUrl(url));
  return stores.get(url)!;
};

/** Pool task handler: the featurize stage on one shard, in a worker thread. */
const featurizeShard: TaskHandler<FeaturizeTask, FeaturizeOutput> = (t) =>
  featurize({ store: store(t.storeUrl), data: store(t.dataUrl), reporter: silentReporter, memo }, { runId: t.runId, shardKey: t.shardKey });

export default featurizeShard;
