import { z } from 'zod';
import type { StageRecord } from '../run/records.js';
import { InvalidDataError } from '../errors/index.js';

/** What the report needs from a run's manifest. */
export interface RunManifestView {
  runId: string;
  experiment: string;
  status: string;
  startedAt?: string;
  endedAt?: string;
  /** The resolved experiment configuration. */
  config?: unknown;
  /** Input files with their sha256. */
  inputs: ManifestInput[];
  /** Versions of the software that produced the run (textshift, node, tfjs backend, ...). */
  versions: Record<string, string>;
  stages: Record<string, StageRecord>;
  /** Why the run failed, when it did: stage, cause, error class, and the time limit it hit if it was one. */
  failure?: RunFailure;
}

/** A failed run's recorded failure (src/run/manifest.ts `failure`). */
export interface RunFailure {
  stage: string;
  error: string;
  errorName?: string;
  retryable?: boolean;
  timeLimit?: { limit: string; reason: string };
}

/** One input file of a run. */
export interface ManifestInput {
  name: string;
  sha256: string;
  dataset?: string;
  bytes?: number;
  rows?: number;
}

const iso = z.string().optional();
const Input = z.looseObject({
  name: z.string().optional(),
  path: z.string().optional(),
  key: z.string().optional(),
  part: z.string().optional(),
  sha256: z.string(),
  bytes: z.number().optional(),
  size: z.number().optional(),
  rows: z.number().optional(),
});
const RawManifest = z.looseObject({
  runId: z.string().optional(),
  id: z.string().optional(),
  experiment: z.union([z.string(), z.looseObject({ name: z.string() })]).optional(),
  config: z.unknown().optional(),
  status: z.string().optional(),
  startedAt: iso,
  createdAt: iso,
  endedAt: iso,
  finishedAt: iso,
  updatedAt: iso,
  inputs: z.union([z.array(Input), z.record(z.string(), z.union([z.string(), Input, z.array(Input)]))]).optional(),
  versions: z.record(z.string(), z.string()).optional(),
  stages: z.record(z.string(), z.looseObject({ status: z.string() })).optional(),
  failure: z
    .looseObject({
      stage: z.string(),
      error: z.string(),
      errorName: z.string().optional(),
      retryable: z.boolean().optional(),
      timeLimit: z.looseObject({ limit: z.string(), reason: z.string() }).optional(),
    })
    .optional(),
});

/**
 * Reads a manifest document (src/run/manifest.ts) into the fields the report uses, tolerating naming variants
 * (`id`/`runId`, `createdAt`/`startedAt`, inputs as a list, a map, or lists per dataset; a finished run without
 * `endedAt` ends at `updatedAt`). Throws naming the source and field when it is unusable.
 */
export function toManifestView(raw: unknown, source: string): RunManifestView {
  const parsed = RawManifest.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new InvalidDataError(`${source}: unreadable manifest: ${problems.join('; ')}`);
  }
  const m = parsed.data;
  const runId = m.runId ?? m.id;
  if (runId === undefined) throw new InvalidDataError(`${source}: manifest has no runId`);
  const configName = (m.config as { name?: unknown } | undefined)?.name;
  const experiment =
    typeof m.experiment === 'string' ? m.experiment : (m.experiment?.name ?? (typeof configName === 'string' ? configName : '?'));
  const inputs = Array.isArray(m.inputs)
    ? m.inputs.map((i) => inputOf(undefined, i))
    : Object.entries(m.inputs ?? {}).flatMap(([name, v]) =>
        typeof v === 'string' ? [{ name, sha256: v }] : Array.isArray(v) ? v.map((i) => inputOf(name, i)) : [inputOf(undefined, { name, ...v })],
      );
  const status = m.status ?? 'unknown';
  const finished = status === 'succeeded' || status === 'failed';
  return {
    runId,
    experiment,
    status,
    startedAt: m.startedAt ?? m.createdAt,
    endedAt: m.endedAt ?? m.finishedAt ?? (finished ? m.updatedAt : undefined),
    config: m.config ?? (typeof m.experiment === 'object' ? m.experiment : undefined),
    inputs,
    versions: m.versions ?? {},
    stages: (m.stages ?? {}) as Record<string, StageRecord>,
    ...(m.failure ? { failure: m.failure } : {}),
  };
}

/** A failure in one line: `Train: <cause> [<limit> time limit: <reason>; retryable]` (the cause names its error). */
export function failureLine(f: RunFailure): string {
  const notes = [f.timeLimit ? `${f.timeLimit.limit} time limit: ${f.timeLimit.reason}` : undefined, f.retryable === undefined ? undefined : f.retryable ? 'retryable' : 'not retryable'];
  const detail = notes.filter((n) => n !== undefined).join('; ');
  return `${f.stage}: ${f.error}${detail ? ` [${detail}]` : ''}`;
}

/** Wall seconds of the run: end minus start, else the sum of stage seconds, else undefined. */
export function runSeconds(m: RunManifestView): number | undefined {
  if (m.startedAt !== undefined && m.endedAt !== undefined) {
    const s = (Date.parse(m.endedAt) - Date.parse(m.startedAt)) / 1000;
    if (Number.isFinite(s)) return s;
  }
  const stageSeconds = Object.values(m.stages).map((s) => s.seconds);
  return stageSeconds.some((s) => s !== undefined) ? stageSeconds.reduce<number>((a, s) => a + (s ?? 0), 0) : undefined;
}

function inputOf(dataset: string | undefined, i: z.infer<typeof Input>): ManifestInput {
  const out: ManifestInput = { name: i.key ?? i.path ?? i.name ?? i.part ?? '?', sha256: i.sha256 };
  const bytes = i.bytes ?? i.size;
  if (dataset !== undefined) out.dataset = dataset;
  if (bytes !== undefined) out.bytes = bytes;
  if (i.rows !== undefined) out.rows = i.rows;
  return out;
}
