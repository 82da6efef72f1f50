import { randomBytes } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { TransientError } from '../errors/index.js';

/**
 * A short-lived lock on one file of a folder store, held while a conditional put compares the file and replaces it.
 *
 * Why this is mutual exclusion: the lock is a file created with O_CREAT|O_EXCL (`flag: 'wx'`), which the kernel
 * creates atomically — of two processes (or two calls in one process) creating it at once, exactly one succeeds,
 * and the holder removes it when done. A holder that died inside its critical section (a few milliseconds) leaves
 * its lock behind; such a lock is removed only when its holder is provably gone (its pid no longer runs on this
 * host) or it has been held far longer than any put takes (30 s). Removal itself is serialized by a second O_EXCL
 * file (the break lock), and removes the lock only if it still is the file judged abandoned (same inode and nonce):
 * an abandoned lock can change only through a breaker, so a lock taken since is never removed. (Left to chance are
 * only a breaker that dies inside its own sub-millisecond break while another one waits out the age limit, and a
 * live holder stalled for 30 s inside a put.)
 */

/** Written into the lock file: who holds it, so others can tell a dead holder from a busy one. */
interface Holder {
  pid: number;
  host: string;
  nonce: string;
  at: string;
}

/** How long a writer waits for a lock held by a live process before giving up (puts hold it for milliseconds). */
const WAIT_MS = 60_000;
/** A lock (or break lock) older than this is abandoned even when its holder cannot be checked (another host). */
const STALE_MS = 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether process `pid` runs on this host (EPERM: it runs, as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A lock file as seen once: which file it is (inode), how old, and its holder (none while its creator is still writing it). */
interface LockState {
  ino: number;
  ageMs: number;
  holder?: Holder;
}

async function inspect(path: string): Promise<LockState | undefined> {
  try {
    const s = await stat(path);
    let holder: Holder | undefined;
    try {
      holder = JSON.parse(await readFile(path, 'utf8')) as Holder;
    } catch {
      // Created but not yet written, or gone since the stat.
    }
    return { ino: s.ino, ageMs: Date.now() - s.mtimeMs, ...(holder ? { holder } : {}) };
  } catch {
    return undefined;
  }
}

async function createExclusive(path: string, holder: Holder): Promise<boolean> {
  try {
    await writeFile(path, JSON.stringify(holder), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** Whether a lock is abandoned: its holder no longer runs on this host, or it is older than any put takes. */
function abandoned(lock: LockState, host: string): boolean {
  return (lock.holder !== undefined && lock.holder.host === host && !processAlive(lock.holder.pid)) || lock.ageMs > STALE_MS;
}

/** Removes the lock at `path` if it still is the abandoned file `seen` (same inode and nonce; see the module comment). */
async function breakAbandoned(path: string, breaker: string, seen: LockState, me: Holder): Promise<void> {
  if (!(await createExclusive(breaker, me))) {
    const stuck = await inspect(breaker);
    if (stuck && stuck.ageMs > STALE_MS) await rm(breaker, { force: true });
    return;
  }
  try {
    const now = await inspect(path);
    if (now && now.ino === seen.ino && now.holder?.nonce === seen.holder?.nonce) await rm(path, { force: true });
  } finally {
    await rm(breaker, { force: true });
  }
}

/**
 * Removes a lock file (`<file>.write-lock<suffix>` or its break lock) that no live holder owns, as a writer waiting
 * for it would break it; returns whether it was removed. A lock held by a live process stays.
 */
export async function removeIfAbandoned(lockPath: string): Promise<boolean> {
  const lock = await inspect(lockPath);
  const me: Holder = { pid: process.pid, host: hostname(), nonce: randomBytes(8).toString('hex'), at: new Date().toISOString() };
  if (!lock || !abandoned(lock, me.host)) return false;
  if (lockPath.includes('.break-lock')) {
    // A breaker holds its break lock for a moment; one past the age limit died inside its break.
    if (lock.ageMs <= STALE_MS) return false;
    await rm(lockPath, { force: true });
    return true;
  }
  await breakAbandoned(lockPath, lockPath.replace('.write-lock', '.break-lock'), lock, me);
  return (await inspect(lockPath))?.ino !== lock.ino;
}

/**
 * Runs `work` holding the write lock of `file` (the lock is `<file>.write-lock<suffix>`, its break lock
 * `<file>.break-lock<suffix>`); `what` names the locked object in a timeout error.
 */
export async function withWriteLock<T>(file: string, suffix: string, what: string, work: () => Promise<T>): Promise<T> {
  const lockPath = `${file}.write-lock${suffix}`;
  const breaker = `${file}.break-lock${suffix}`;
  const me: Holder = { pid: process.pid, host: hostname(), nonce: randomBytes(8).toString('hex'), at: new Date().toISOString() };
  const deadline = Date.now() + WAIT_MS;
  for (let wait = 2; !(await createExclusive(lockPath, me)); wait = Math.min(wait * 2, 100)) {
    const lock = await inspect(lockPath);
    if (lock && abandoned(lock, me.host)) await breakAbandoned(lockPath, breaker, lock, me);
    else if (Date.now() > deadline) {
      const who = lock?.holder ? `process ${lock.holder.pid} on ${lock.holder.host} since ${lock.holder.at}` : 'another writer';
      throw new TransientError(`${what}: the write lock ${lockPath} is still held by ${who} after ${WAIT_MS / 1000} s`);
    }
    await sleep(Math.random() * wait);
  }
  try {
    return await work();
  } finally {
    await rm(lockPath, { force: true });
  }
}
