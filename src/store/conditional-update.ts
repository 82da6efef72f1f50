import { PreconditionFailedError, type BlobStore, type BlobWithInfo } from './blob-store.js';

/** What a decision on an object read makes: its result, and the new body to write (none: write nothing). */
export interface UpdateDecision<T> {
  result: T;
  body?: string;
}

/** How often an update reads again and decides again when other writers keep writing first. */
export const UPDATE_ATTEMPTS = 10;

/**
 * Read-modify-write of one object without losing anyone else's change: reads `key` with its etag (undefined where it
 * does not exist), lets `decide` make the new body from what it read, and writes it only if nobody wrote in between
 * (If-Match on the etag read, If-None-Match where there was no object). When someone did, reads again and decides
 * again, up to `attempts` times with jittered backoff. `decide` therefore only computes; it may throw to write nothing.
 */
export async function updateObject<T>(
  store: BlobStore,
  key: string,
  decide: (read: BlobWithInfo | undefined) => UpdateDecision<T>,
  attempts = UPDATE_ATTEMPTS,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const read = await store.getWithInfo(key);
    const { result, body } = decide(read);
    if (body === undefined) return result;
    try {
      await store.put(key, body, read ? { ifMatch: read.info.etag! } : { ifNoneMatch: '*' });
      return result;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError) || attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(1000, 10 * 2 ** attempt)));
    }
  }
}
