import { hostname } from 'node:os';
import { PreconditionFailedError, type BlobStore } from '../store/blob-store.js';
import { processAlive } from '../store/fs-write-lock.js';
import { PermanentError } from '../errors/index.js';
import { runKeys } from './keys.js';

/** Who holds a run: the content of `runs/<id>/lock.json` while a local run runs. */
export interface RunLockHolder {
  runId: string;
  pid: number;
  host: string;
  startedAt: string;
}

/** A run that another live process is running; the message names the run and that process. */
export class RunLockedError extends PermanentError {}

/** A held run lock. */
export interface RunLock {
  readonly holder: RunLockHolder;
  /** Removes the lock if this process still holds it. */
  release(): Promise<void>;
}

/** Attempts when the lock changes hands while we look at it (released, or taken over by another process). */
const ATTEMPTS = 5;

/**
 * Takes the lock of run `runId` in `store` for this process: a lock object created only where none exists
 * (If-None-Match), so of two runs starting at once exactly one gets it. A lock whose holder is a process of this host
 * that no longer runs (killed, crashed) is taken over, by a conditional write on the etag read (If-Match), so two
 * processes cannot both take it over; `log` says so. A lock held by a running process, or by a process of another
 * host (which cannot be checked from here), fails with RunLockedError naming the run and the holder.
 */
export async function lockRun(store: BlobStore, runId: string, log: (message: string) => void): Promise<RunLock> {
  const key = runKeys(runId).lock;
  const me: RunLockHolder = { runId, pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  const body = JSON.stringify(me, null, 2);
  const held: RunLock = { holder: me, release: () => releaseRun(store, key, me) };
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (await tryPut(() => store.put(key, body, { ifNoneMatch: '*' }))) return held;
    const read = await store.getWithInfo(key);
    // Released between our write and our read: try to create it again.
    if (!read) continue;
    const holder = parseHolder(read.body);
    const where = `${store.url}/${key}`;
    if (holder && (holder.host !== me.host || processAlive(holder.pid))) {
      throw new RunLockedError(
        `run ${runId} is already running: process ${holder.pid} on ${holder.host} has held ${where} since ${holder.startedAt}. ` +
          'Wait for it to finish, or stop it; if that process is gone (another host, or its pid reused), delete that file.',
      );
    }
    if (await tryPut(() => store.put(key, body, { ifMatch: read.info.etag! }))) {
      const who = holder ? `process ${holder.pid} (started ${holder.startedAt})` : 'an unreadable holder';
      log(`run ${runId}: took over its lock from ${who}, which is no longer running`);
      return held;
    }
  }
  throw new RunLockedError(`run ${runId}: its lock ${store.url}/${key} kept changing hands; another process is starting the same run`);
}

/** True when a conditional put went through, false when its condition did not hold. */
async function tryPut(put: () => Promise<void>): Promise<boolean> {
  try {
    await put();
    return true;
  } catch (err) {
    if (err instanceof PreconditionFailedError) return false;
    throw err;
  }
}

function parseHolder(body: Buffer): RunLockHolder | undefined {
  try {
    const h = JSON.parse(body.toString('utf8')) as Partial<RunLockHolder>;
    return typeof h.pid === 'number' && typeof h.host === 'string' ? (h as RunLockHolder) : undefined;
  } catch {
    return undefined;
  }
}

/** Deletes the lock when it is still ours (a process that took it over from us, believing us dead, keeps it). */
async function releaseRun(store: BlobStore, key: string, me: RunLockHolder): Promise<void> {
  const read = await store.get(key);
  const holder = read && parseHolder(read);
  if (holder && holder.pid === me.pid && holder.host === me.host && holder.startedAt === me.startedAt) await store.delete(key);
}
