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

/** Returns memo[key], computing and storing it on first use (no memo: computes every time). */
export async function memoized<T>(ctx: StageContext, key: string, make: () => Promise<T>): Promise<T> {
  if (!ctx.memo) return make();
  if (!ctx.memo.has(key)) ctx.memo.set(key, make());
  return (await ctx.memo.get(key)) as T;
}
