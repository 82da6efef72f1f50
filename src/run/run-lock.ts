import { hostname } from 'node:os';
import { PreconditionFailedError, type BlobStore } from '../store/blob-store.js';
import { updateObject } from '../store/conditional-update.js';
import { processAlive } from '../store/fs-write-lock.js';
import { PermanentError } from '../errors/index.js';
import { runKeys } from './keys.js';

/**
 * Who may write a run: the content of `runs/<id>/lock.json` (the run's lease). A local run holds it as a process
 * (pid and host); an AWS run as its execution (the execution ARN). `token` is the fencing token: it grows by one with
 * every acquisition, and is never reset (a released lease stays as a record), so a writer holding an older token
 * knows someone else has taken the run over since.
 */
export interface RunLockHolder {
  runId: string;
  /** The execution ARN of an AWS run; absent for a local process. */
  execution?: string;
  /** The Batch job id of a training job's lease (src/workflow/job-lease.ts). */
  job?: string;
  pid: number;
  host: string;
  startedAt: string;
  token: number;
  /** The last renewal: a lease not renewed for LEASE_TTL_MS lapses (a holder of another host cannot be checked by pid). */
  renewedAt: string;
  /**
   * When an execution's lease lapses whatever its renewals: the end of the longest the execution can run (the state
   * machine's timeout). Its stages need not renew it (a Featurize map of hours renews nothing).
   */
  expiresAt?: string;
  /** Set when its holder let go of the run (finished, failed and recorded): anyone may take it next. */
  releasedAt?: string;
}

/** A run that another live process or execution holds; the message names the run and the holder. */
export class RunLockedError extends PermanentError {}

/** A write by a holder whose lease has been taken over: it must stop, since another holder now writes the run. */
export class FencedError extends PermanentError {
  constructor(runId: string, token: number, now: RunLockHolder | undefined) {
    const stop = 'this writer stops, so two never write one run';
    super(
      !now
        ? `run ${runId}: its lease is gone (this writer held fencing token ${token}); ${stop}`
        : now.token === token
          ? `run ${runId} was released by ${holderText(now)} at ${now.releasedAt} (it ended); ${stop}`
          : `run ${runId} was taken over by ${holderText(now)} (fencing token ${now.token}; this writer holds ${token}); ${stop}`,
    );
  }
}

/** A held run lease. */
export interface RunLock {
  readonly holder: RunLockHolder;
  /** Renews the lease (a heartbeat); throws FencedError when another holder took it meanwhile. */
  renew(): Promise<void>;
  /** Marks the lease released if this holder still holds it (keeping the token, so fencing stays monotonic). */
  release(): Promise<void>;
}

/**
 * How long a lease lives without a renewal, unless it has an `expiresAt`. A local run renews every LEASE_RENEW_MS, so
 * six hours is plenty; it bounds how long a process of another host that died blocks its run.
 */
export const LEASE_TTL_MS = 6 * 3600_000;
/** The heartbeat of a local run's lease. */
export const LEASE_RENEW_MS = 5 * 60_000;

/** Attempts when the lease changes hands while we look at it. */
const ATTEMPTS = 5;

/** Who is asking for the lease: this process, an AWS execution (its ARN), or a Batch job (its id). */
export interface LeaseClaimant {
  execution?: string;
  job?: string;
  /** How long the lease holds without renewals (an execution: its state machine's timeout). */
  holdsMs?: number;
}

/**
 * Takes the lease of run `runId` for this process or `claimant.execution`: created only where none exists
 * (If-None-Match), so of two starting at once exactly one gets it; taken over (If-Match on the etag read, token + 1)
 * when it was released, has lapsed (past its `expiresAt`, or not renewed for LEASE_TTL_MS), is held by a process of this host that no longer
 * runs, or is held by the same execution (a redrive: its earlier attempt's writers are fenced off by the new token).
 * `log` says when it took a lease over. A lease held by a live process or another execution fails with
 * RunLockedError naming the run, the holder and when it lapses.
 */
export async function lockRun(store: BlobStore, runId: string, log: (message: string) => void, claimant: LeaseClaimant = {}): Promise<RunLock> {
  const key = runKeys(runId).lock;
  const taken = await takeLease(store, key, runId, claimant, LEASE_TTL_MS, (holder, why) => log(`run ${runId}: took over its lease from ${holderText(holder)}: ${why}`));
  if ('lock' in taken) return taken.lock;
  const { holder } = taken;
  const lapses = holder.expiresAt ?? new Date(Date.parse(holder.renewedAt) + LEASE_TTL_MS).toISOString();
  throw new RunLockedError(
    `run ${runId} is already running: ${holderText(holder)} has held ${store.url}/${key} since ${holder.startedAt} (it lapses at ${lapses} unless renewed). ` +
      (holder.execution
        ? 'Wait for that execution to finish, or stop it and redrive it; a new execution may take the run once it has ended.'
        : 'Wait for it to finish, or stop it; if that process is gone (another host, or its pid reused), delete that file.'),
  );
}

/**
 * Takes the lease at `key` (see lockRun for when a held one may be taken over, `ttlMs` being how long it lives without
 * a renewal): the held lock, or the live holder that keeps it. `tookOver` hears of a takeover of an unreleased lease.
 */
export async function takeLease(
  store: BlobStore,
  key: string,
  runId: string,
  claimant: LeaseClaimant,
  ttlMs: number,
  tookOver: (holder: RunLockHolder, why: string) => void,
): Promise<{ lock: RunLock } | { holder: RunLockHolder }> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const now = new Date().toISOString();
    const me: RunLockHolder = {
      runId,
      ...(claimant.execution ? { execution: claimant.execution } : {}),
      ...(claimant.job ? { job: claimant.job } : {}),
      pid: process.pid,
      host: hostname(),
      startedAt: now,
      token: 1,
      renewedAt: now,
      ...(claimant.holdsMs !== undefined ? { expiresAt: new Date(Date.now() + claimant.holdsMs).toISOString() } : {}),
    };
    if (await tryPut(() => store.put(key, JSON.stringify(me, null, 2), { ifNoneMatch: '*' }))) return { lock: held(store, key, me) };
    const read = await store.getWithInfo(key);
    // Deleted between our write and our read: try to create it again.
    if (!read) continue;
    const holder = parseHolder(read.body);
    const why = holder ? takeoverReason(holder, me, ttlMs) : 'an unreadable holder';
    if (why === undefined) return { holder: holder! };
    me.token = (holder?.token ?? 0) + 1;
    // A redriven execution keeps the end it had: the state machine's timeout counts from its start.
    if (me.expiresAt === undefined && holder?.expiresAt !== undefined && why === SAME_EXECUTION) me.expiresAt = holder.expiresAt;
    if (await tryPut(() => store.put(key, JSON.stringify(me, null, 2), { ifMatch: read.info.etag! }))) {
      if (holder && !holder.releasedAt) tookOver(holder, why);
      return { lock: held(store, key, me) };
    }
  }
  throw new RunLockedError(`run ${runId}: the lease ${store.url}/${key} kept changing hands; another process is taking it at the same time`);
}

const SAME_EXECUTION = 'the same execution, redriven';

/** Why `me` may take the lease `holder` holds, or undefined when it may not. */
function takeoverReason(holder: RunLockHolder, me: RunLockHolder, ttlMs: number): string | undefined {
  if (holder.releasedAt) return 'released';
  if (me.execution !== undefined && holder.execution === me.execution) return SAME_EXECUTION;
  if (me.job !== undefined && holder.job === me.job) return 'the same job, attempted again';
  if (holder.expiresAt !== undefined) {
    if (Date.now() > Date.parse(holder.expiresAt)) return `expired at ${holder.expiresAt}`;
  } else if (Date.now() - Date.parse(holder.renewedAt) > ttlMs) return `not renewed since ${holder.renewedAt}`;
  if (holder.execution === undefined && holder.job === undefined && holder.host === me.host && !processAlive(holder.pid)) return 'that process is no longer running';
  return undefined;
}

/** The run's lease as it stands, or undefined when the run has none. */
export async function readRunLock(store: BlobStore, runId: string): Promise<RunLockHolder | undefined> {
  const body = await store.get(runKeys(runId).lock);
  return body && parseHolder(body);
}

/** Whether lease record `now` still carries fencing token `token`, unreleased: its holder may still write. */
function carries(now: RunLockHolder | undefined, token: number): now is RunLockHolder {
  return now !== undefined && now.token === token && !now.releasedAt;
}

/** Throws FencedError unless the run's lease still carries `token` and is not released. */
export async function assertHolds(store: BlobStore, runId: string, token: number): Promise<void> {
  const now = await readRunLock(store, runId);
  if (!carries(now, token)) throw new FencedError(runId, token, now);
}

/**
 * Whether AWS execution `execution` is the run's holder: it holds the lease, or was the last to hold it (it released
 * it, recording a failure, and nobody has taken the run since: a second failure of the same attempt is its own too).
 */
export async function heldByExecution(store: BlobStore, runId: string, execution: string): Promise<boolean> {
  return (await readRunLock(store, runId))?.execution === execution;
}

/**
 * Releases the run's lease if AWS execution `execution` holds it (its run finished, or its failure is recorded), so
 * another execution may take the run; a lease held by anyone else is left alone.
 */
export async function releaseExecutionLease(store: BlobStore, runId: string, execution: string): Promise<void> {
  const now = await readRunLock(store, runId);
  if (now && !now.releasedAt && now.execution === execution) await held(store, runKeys(runId).lock, now).release();
}

/** The lease record `me` as a RunLock: renewed and released by conditional writes that fail when it changed hands. */
function held(store: BlobStore, key: string, me: RunLockHolder): RunLock {
  /** Rewrites the lease with `change` applied, only over a record that still carries our token. */
  const rewrite = (change: (h: RunLockHolder) => void, onLost: 'throw' | 'ignore') =>
    updateObject(store, key, (read) => {
      const now = read && parseHolder(read.body);
      if (!carries(now, me.token)) {
        if (onLost === 'throw') throw new FencedError(me.runId, me.token, now);
        return { result: undefined };
      }
      change(now);
      return { result: undefined, body: JSON.stringify(now, null, 2) };
    });
  return {
    holder: me,
    renew: () => rewrite((h) => (h.renewedAt = new Date().toISOString()), 'throw'),
    release: () => rewrite((h) => (h.releasedAt = new Date().toISOString()), 'ignore'),
  };
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

/** The holder in words: an execution by its ARN, a process by pid and host. */
export function holderText(h: RunLockHolder): string {
  return h.execution ? `execution ${h.execution}` : h.job ? `job ${h.job}` : `process ${h.pid} on ${h.host}`;
}

function parseHolder(body: Buffer): RunLockHolder | undefined {
  try {
    const h = JSON.parse(body.toString('utf8')) as Partial<RunLockHolder>;
    if (typeof h.pid !== 'number' || typeof h.host !== 'string') return undefined;
    // A lock written before leases had tokens and renewals: token 0, renewed when it started.
    return { ...h, token: typeof h.token === 'number' ? h.token : 0, renewedAt: h.renewedAt ?? h.startedAt ?? new Date(0).toISOString() } as RunLockHolder;
  } catch {
    return undefined;
  }
}
