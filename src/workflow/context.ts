import type { BlobStore } from '../store/blob-store.js';
import type { Reporter } from '../run/reporter.js';

/** What every stage function gets from its edge (CLI runner, Lambda handler, Batch entry). */
export interface StageContext {
  /** The run store: experiments/, runs/, cache/, models/. */
  store: BlobStore;
  /** Where dataset files live (locally the data root folder; on AWS the bucket's `datasets/` prefix). */
  data: BlobStore;
  reporter: Reporter;
  /** In-process memo shared by stages of one process (parsed splits, loaded encoders); never required. */
  memo?: Map<string, unknown>;
}

/**
 * Returns memo[key], computing and storing it on first use (no memo: computes every time). A failure is not
 * remembered: callers already waiting get it, and the entry is dropped, so the next call (a retried shard in the
 * same warm container) computes again instead of replaying an error whose cause may be gone.
 */
export async function memoized<T>(ctx: StageContext, key: string, make: () => Promise<T>): Promise<T> {
  const memo = ctx.memo;
  if (!memo) return make();
  let pending = memo.get(key) as Promise<T> | undefined;
  if (!pending) {
    const made = (async () => make())();
    made.catch(() => {
      if (memo.get(key) === made) memo.delete(key);
    });
    memo.set(key, made);
    pending = made;
  }
  return pending;
}

/** Stores a value already in hand under `key`, as memoized would keep it (no memo: nothing is kept). */
export function remember<T>(ctx: StageContext, key: string, value: T): void {
  ctx.memo?.set(key, Promise.resolve(value));
}
