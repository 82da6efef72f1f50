import type { BlobStore } from '../store/blob-store.js';
import { runKeys } from './keys.js';
import { assertHolds } from './run-lock.js';

/**
 * Parts of a run written by the holder alone: what a run records of itself (manifest, plan, splits, models and
 * checkpoints, logs, report, archive). Not fenced: the lease itself, and what Featurize writes per shard (shard tasks,
 * their results, the Distributed Map's files), whose content is fixed by its inputs, so a stale writer rewrites the
 * same bytes and a check per shard would double a 100,000-shard run's requests.
 */
const UNFENCED = ['lock.json', 'shards/', 'shards.json', 'featurized/', 'featurize-map'];

/**
 * `store` for a writer of run `runId` holding fencing token `token`: every write, touch or delete of a fenced key first checks
 * that the run's lease still carries the token (FencedError otherwise), so a writer whose run was taken over (a job of
 * an earlier attempt still running, a local process that lost its lease) stops at its next checkpoint or manifest
 * write instead of mixing its state into the new holder's. S3 cannot make one object's write conditional on another
 * object, so this is a check before the write: it narrows a stale writer's window to one request, and the manifest's
 * own writes stay atomic by their If-Match.
 */
export function fencedStore(store: BlobStore, runId: string, token: number): BlobStore {
  const root = `${runKeys(runId).root}/`;
  const isFenced = (key: string) => key.startsWith(root) && !UNFENCED.some((part) => key.slice(root.length).startsWith(part));
  const check = (key: string) => (isFenced(key) ? assertHolds(store, runId, token) : Promise.resolve());
  /** A write of the store that checks the token first when its key is fenced. */
  const fenced =
    <A extends [string, ...unknown[]], R>(write: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      await check(a[0]);
      return write(...a);
    };
  const view: BlobStore = {
    url: store.url,
    get: (...a) => store.get(...a),
    getOrThrow: (...a) => store.getOrThrow(...a),
    getStream: (...a) => store.getStream(...a),
    getWithInfo: (...a) => store.getWithInfo(...a),
    head: (...a) => store.head(...a),
    list: (...a) => store.list(...a),
    put: fenced((...a: Parameters<BlobStore['put']>) => store.put(...a)),
    putStream: fenced((...a: Parameters<BlobStore['putStream']>) => store.putStream(...a)),
    touch: fenced((...a: Parameters<BlobStore['touch']>) => store.touch(...a)),
    delete: fenced((...a: Parameters<BlobStore['delete']>) => store.delete(...a)),
  };
  if (store.localPath) view.localPath = (key) => store.localPath!(key);
  return view;
}
