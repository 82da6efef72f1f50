/** The `--peers` table: each system's repeated runs summarized, with textshift's speed ratio to every peer of its group. */
import { alignColumns } from '../../src/format/text.js';

/** Every run of one system in one comparison group. */
export interface SystemRuns {
  /** Rows of a group are compared with the group's textshift row (`bow`, `encoder SST-2`, ...). */
  group: string;
  system: string;
  /** The group's textshift row: the others' ratios are to it. */
  reference: boolean;
  /** Another textshift configuration (e.g. an int8 model): no ratio to the reference; its notes give its own. */
  variant?: boolean;
  /** Seconds per run: wall of the whole child for experiments, encoding seconds for encoders. */
  seconds: number[];
  /** Peak RSS of the child's process tree per run, MB. */
  peakRssMb: number[];
  /** Test accuracies per run (BoW systems). */
  bow1Sst2?: number[];
  bow2Imdb?: number[];
  /** Texts encoded per run (encoder systems): gives texts/s at the median. */
  texts?: number;
  note?: string;
}

/** Smallest value and median (mean of the middle two for an even count). */
export function minMedian(values: readonly number[]): { min: number; median: number } {
  if (values.length === 0) throw new Error('minMedian: no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { min: sorted[0]!, median };
}

/** How many times faster the group's textshift row is than `row`, by median seconds (undefined without a reference). */
export function speedup(row: SystemRuns, rows: readonly SystemRuns[]): number | undefined {
  const ref = rows.find((r) => r.group === row.group && r.reference);
  if (!ref || ref === row || row.variant || ref.seconds.length === 0 || row.seconds.length === 0) return undefined;
  return minMedian(row.seconds).median / minMedian(ref.seconds).median;
}

/** "0.7963", or "0.7951-0.7963" when runs differ. */
function accuracy(values: readonly number[] | undefined): string {
  if (!values?.length) return '';
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo === hi ? lo.toFixed(4) : `${lo.toFixed(4)}-${hi.toFixed(4)}`;
}

/** Rows grouped in order of each group's first row, the group's textshift row first, otherwise in input order. */
export function groupRows(rows: readonly SystemRuns[]): SystemRuns[] {
  const groups = [...new Set(rows.map((r) => r.group))];
  return groups.flatMap((g) => rows.filter((r) => r.group === g).sort((a, b) => Number(b.reference) - Number(a.reference)));
}

/** Renders the table (grouped, see groupRows), then `footnotes` one per line (how RSS was measured, load, what was skipped). */
export function peerTable(rows: readonly SystemRuns[], footnotes: readonly string[] = []): string {
  const header = ['group', 'system', 'runs', 's min', 's median', 'peak RSS MB', 'bow_1 SST-2', 'bow_2 IMDB', 'texts/s', 'textshift ×', 'notes'];
  const body = groupRows(rows).map((r) => {
    const s = r.seconds.length ? minMedian(r.seconds) : undefined;
    const ratio = speedup(r, rows);
    return [
      r.group,
      r.system,
      String(r.seconds.length),
      s ? s.min.toFixed(2) : '',
      s ? s.median.toFixed(2) : '',
      r.peakRssMb.length ? Math.max(...r.peakRssMb).toFixed(0) : '',
      accuracy(r.bow1Sst2),
      accuracy(r.bow2Imdb),
      r.texts !== undefined && s ? (r.texts / s.median).toFixed(1) : '',
      ratio === undefined ? '' : `${ratio.toFixed(2)}×`,
      r.note ?? '',
    ];
  });
  const align: ('left' | 'right')[] = ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left'];
  return alignColumns([header, ...body], align) + footnotes.map((f) => `${f}\n`).join('');
}
