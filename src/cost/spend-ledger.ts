/**
 * Spend across runs: the admission of a run on a deployment against its caps across runs (cdk.json
 * `maxConcurrentRuns`, `maxDailyCostUsd`), after the per-run guard (guard.ts) has priced it.
 *
 * The state is one object, `spend/ledger.json`: every run admitted today (UTC) or still holding a slot, and each recent
 * day's planned spend. One object rather than one per day, because an admission checks both caps at once, and only
 * a single object can be changed atomically: each admission and release reads it with its etag and writes it back on
 * that etag only (If-Match; If-None-Match for the first), re-reading and re-deciding when another Prepare wrote in
 * between. So of two Prepares at the cap exactly one is admitted, whatever their timing. It stays small: a run
 * admitted on an earlier day leaves it once it no longer holds a slot, and day totals are kept LEDGER_DAYS days (the
 * bucket's noncurrent versions keep the object's history for 30 days besides).
 *
 * A slot is released when the run ends (Report succeeded, MarkFailed recorded a failure) and frees itself maxRunHours
 * after admission, the state machine's execution timeout: a run stopped from the console or timed out, which reaches
 * neither, cannot hold its slot for longer than it can run. A run's planned estimate counts on the day it is admitted,
 * whether it then succeeds or fails, and once only that day (a retried Prepare, a resume the same day); a resume on a
 * later day counts it again, since it may compute again. It is what was planned, not what was billed: billing is
 * known only after the run.
 */
import { z } from 'zod';
import type { SpendCaps } from '../config/deployment.js';
import { BudgetExceededError, InvalidDataError } from '../errors/index.js';
import { SPEND_LEDGER_KEY } from '../run/keys.js';
import type { BlobStore } from '../store/blob-store.js';
import { updateObject } from '../store/conditional-update.js';
import { formatMoney } from './cost.js';

/** How many days of daily totals the ledger keeps. */
export const LEDGER_DAYS = 31;

const LedgerRun = z.strictObject({
  /** The UTC day (yyyy-mm-dd) whose planned spend the run's estimate counts in. */
  day: z.string(),
  estimateUsd: z.number().nonnegative(),
  admittedAt: z.string(),
  /** When its slot frees itself if nothing released it (admission + maxRunHours). */
  expiresAt: z.string(),
  /** When it ended (released its slot), and how; absent while it holds one. */
  releasedAt: z.string().optional(),
  outcome: z.enum(['succeeded', 'failed']).optional(),
});
export type LedgerRun = z.infer<typeof LedgerRun>;

const SpendLedger = z.strictObject({
  version: z.literal(1),
  runs: z.record(z.string(), LedgerRun),
  /** UTC day -> the planned spend of the runs admitted that day. */
  days: z.record(z.string(), z.strictObject({ plannedUsd: z.number().nonnegative(), runs: z.number().int().nonnegative() })),
});
export type SpendLedger = z.infer<typeof SpendLedger>;

/** What an admission found: the run's place under both caps (this run included). */
export interface Admission {
  runId: string;
  day: string;
  /** Runs holding a slot, this one included, and the cap. */
  active: number;
  maxConcurrentRuns: number;
  /** The day's planned spend, this run's estimate included, and the cap. */
  plannedUsd: number;
  maxDailyCostUsd: number;
  /** The run had been admitted before (a retried Prepare, a resume): its estimate was not counted again. */
  readmitted: boolean;
}

/** The run being admitted; `source` names the experiment file in refusals. */
export interface AdmissionRequest {
  runId: string;
  estimateUsd: number;
  source: string;
}

/** A clock: tests move it. */
export type Clock = () => Date;
const systemClock: Clock = () => new Date();

/**
 * Admits a run under the deployment's caps across runs, or throws BudgetExceededError (permanent) naming the numbers:
 * the runs active and the cap, or the day's planned spend, this run's estimate and the cap, where each cap is set and
 * how to raise it. A run that still holds its slot (a retried Prepare) is admitted again without a write; one admitted
 * before whose slot was freed (a resume) needs a free slot, and its estimate is not counted again.
 */
export async function admitRun(store: BlobStore, run: AdmissionRequest, caps: SpendCaps, now: Clock = systemClock): Promise<Admission> {
  return writeLedger(store, now, (ledger, at) => {
    const today = utcDay(at);
    const entry = ledger.runs[run.runId];
    const others = activeRuns(ledger, at).filter(([id]) => id !== run.runId);
    const day = ledger.days[today] ?? { plannedUsd: 0, runs: 0 };
    const readmitted = entry !== undefined;
    const admission = (on: string, plannedUsd: number): Admission => ({
      runId: run.runId,
      day: on,
      active: others.length + 1,
      maxConcurrentRuns: caps.maxConcurrentRuns,
      plannedUsd,
      maxDailyCostUsd: caps.maxDailyCostUsd,
      readmitted,
    });
    // A retried Prepare: the run holds its slot still.
    if (entry && holdsSlot(entry, at)) return { result: admission(entry.day, ledger.days[entry.day]?.plannedUsd ?? entry.estimateUsd) };

    if (others.length >= caps.maxConcurrentRuns) throw concurrencyRefusal(run, others, caps);
    // An entry that survived the prune without a slot was admitted today: its estimate is counted already.
    const plannedUsd = readmitted ? day.plannedUsd : roundUsd(day.plannedUsd + run.estimateUsd);
    if (!readmitted && plannedUsd > caps.maxDailyCostUsd) throw dailyRefusal(run, today, day, caps);

    ledger.runs[run.runId] = {
      day: entry?.day ?? today,
      estimateUsd: entry?.estimateUsd ?? run.estimateUsd,
      admittedAt: at.toISOString(),
      expiresAt: new Date(at.getTime() + caps.maxRunHours * 3_600_000).toISOString(),
    };
    if (!readmitted) ledger.days[today] = { plannedUsd, runs: day.runs + 1 };
    return { result: admission(today, plannedUsd), write: true };
  });
}

/**
 * Frees the slot of a run that ended (`outcome`): Report succeeded, or MarkFailed recorded its failure. Its estimate
 * stays counted on its day. Returns false, writing nothing, when the run holds no slot (never admitted: a refused run,
 * a local run; or released already).
 */
export async function releaseRun(store: BlobStore, runId: string, outcome: NonNullable<LedgerRun['outcome']>, now: Clock = systemClock): Promise<boolean> {
  return writeLedger(store, now, (ledger, at) => {
    const entry = ledger.runs[runId];
    if (!entry || entry.releasedAt !== undefined) return { result: false };
    entry.releasedAt = at.toISOString();
    entry.outcome = outcome;
    return { result: true, write: true };
  });
}

/** The ledger as stored, or an empty one when there is none yet. */
export async function readSpendLedger(store: BlobStore): Promise<SpendLedger> {
  const read = await store.get(SPEND_LEDGER_KEY);
  return read ? parseLedger(read, `${store.url}/${SPEND_LEDGER_KEY}`) : emptyLedger();
}

/** The run ids holding a slot at `at`, oldest admission first. */
export function activeRuns(ledger: SpendLedger, at: Date): [string, LedgerRun][] {
  return Object.entries(ledger.runs)
    .filter(([, r]) => holdsSlot(r, at))
    .sort(([, a], [, b]) => a.admittedAt.localeCompare(b.admittedAt));
}

/** The UTC day of an instant, `yyyy-mm-dd`: the day a daily cap counts in. */
export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

function holdsSlot(r: LedgerRun, at: Date): boolean {
  return r.releasedAt === undefined && Date.parse(r.expiresAt) > at.getTime();
}

function emptyLedger(): SpendLedger {
  return { version: 1, runs: {}, days: {} };
}

function parseLedger(body: Buffer, where: string): SpendLedger {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new InvalidDataError(`${where} is not valid JSON (${(err as Error).message}); it only counts admissions: delete it to start counting afresh`);
  }
  const parsed = SpendLedger.safeParse(json);
  if (!parsed.success) {
    const problem = parsed.error.issues[0]!;
    throw new InvalidDataError(`${where} is not a spend ledger: "${problem.path.join('.')}": ${problem.message}; delete it to start counting afresh`);
  }
  return parsed.data;
}

/** Drops runs admitted before today that no longer hold a slot, and day totals older than LEDGER_DAYS days. */
function prune(ledger: SpendLedger, at: Date): void {
  const today = utcDay(at);
  for (const [id, r] of Object.entries(ledger.runs)) if (r.day < today && !holdsSlot(r, at)) delete ledger.runs[id];
  const oldest = utcDay(new Date(at.getTime() - (LEDGER_DAYS - 1) * 86_400_000));
  for (const day of Object.keys(ledger.days)) if (day < oldest) delete ledger.days[day];
}

/**
 * Reads the ledger, prunes it, lets `decide` change it, and writes it back only if nobody wrote it in between
 * (updateObject: If-Match, or If-None-Match when there was none; otherwise it reads and decides again). `decide`
 * writes nothing itself and may throw (a refusal) to write nothing at all.
 */
async function writeLedger<T>(store: BlobStore, now: Clock, decide: (ledger: SpendLedger, at: Date) => { result: T; write?: boolean }): Promise<T> {
  return updateObject(store, SPEND_LEDGER_KEY, (read) => {
    const ledger = read ? parseLedger(read.body, `${store.url}/${SPEND_LEDGER_KEY}`) : emptyLedger();
    const at = now();
    prune(ledger, at);
    const { result, write } = decide(ledger, at);
    return write ? { result, body: JSON.stringify(ledger, null, 2) } : { result };
  });
}

/** Sums of estimates kept to a millionth of a dollar, so repeated additions do not print as 0.30000000000000004. */
function roundUsd(amount: number): number {
  return Math.round(amount * 1e6) / 1e6;
}

/** A configured amount of US dollars as it was given, e.g. `$500`. */
function usd(amount: number): string {
  return `$${amount}`;
}

function concurrencyRefusal(run: AdmissionRequest, others: [string, LedgerRun][], caps: SpendCaps): BudgetExceededError {
  const listed = others
    .slice(0, 5)
    .map(([id, r]) => `${id} (since ${r.admittedAt})`)
    .join(', ');
  const more = others.length > 5 ? ` and ${others.length - 5} more` : '';
  return new BudgetExceededError(
    `${run.source}: run ${run.runId} is refused: ${others.length} runs are active on this deployment, its cap is ${caps.maxConcurrentRuns} ` +
      `(maxConcurrentRuns in cdk.json): ${listed}${more}. Start it again when one of them has ended (a run frees its slot when it ` +
      `succeeds or fails, or ${caps.maxRunHours} h after it was admitted, maxRunHours), or raise the cap (cdk deploy -c maxConcurrentRuns=...)`,
  );
}

function dailyRefusal(run: AdmissionRequest, today: string, day: { plannedUsd: number; runs: number }, caps: SpendCaps): BudgetExceededError {
  const total = roundUsd(day.plannedUsd + run.estimateUsd);
  return new BudgetExceededError(
    `${run.source}: run ${run.runId} is refused: today's (${today} UTC) planned spend ${formatMoney(day.plannedUsd, 'USD')} ` +
      `(${day.runs} runs admitted) plus this run's estimate ${formatMoney(run.estimateUsd, 'USD')} is ${formatMoney(total, 'USD')}, above ` +
      `this deployment's daily cap ${usd(caps.maxDailyCostUsd)} (maxDailyCostUsd in cdk.json). Start it after 00:00 UTC, shrink it ` +
      '(textshift plan shows its estimate), or raise the cap (cdk deploy -c maxDailyCostUsd=...)',
  );
}

/** An admission for the run's log: its place under both caps. */
export function admissionText(a: Admission): string {
  return (
    `run ${a.runId}: ${a.readmitted ? 'admitted again' : 'admitted'}, ${a.active} of ${a.maxConcurrentRuns} runs active (maxConcurrentRuns); ` +
    `planned spend on ${a.day} UTC ${formatMoney(a.plannedUsd, 'USD')} of ${usd(a.maxDailyCostUsd)} (maxDailyCostUsd)`
  );
}
