import type { BlobStore } from '../store/blob-store.js';
import type { DatasetConfig } from '../config/experiment.js';
import type { LoadedFile, SkippedRow } from '../run/records.js';
import { scanTable, SKIPPED_LISTED, type Example } from './read-table.js';
import { splitPositions } from './split.js';
import { DataError, displayName, fileUrl } from './errors.js';
import { ConfigError, InternalError } from '../errors/index.js';

/** A part of a dataset: rows of one file part, in the order the splits put them (scikit-learn's). */
export interface PartRows {
  /** The file part (a key of the dataset's `files`) the rows come from. */
  file: string;
  /** Each row's index among the file's kept rows (0-based, file order). */
  rows: Uint32Array;
}

/** A dataset as planned from one read of its files: what each file holds (labels only) and its parts as row indices. */
export interface DatasetPlan {
  files: LoadedFile[];
  skipped: { count: number; first: SkippedRow[] };
  /** Per file part: the class index of each kept row, in file order. */
  labels: Record<string, Int32Array>;
  /** Per file part: characters of text over its kept rows (the planner sizes encoder work by it). */
  textChars: Record<string, number>;
  /** Per file part: every kept row's text in file order, when the part was small enough to hold (see planDataset). */
  texts: Record<string, string[] | undefined>;
  /** Every part after the split steps. */
  parts: Record<string, PartRows>;
}

/**
 * Reads every file part of a dataset from the data store, keeping only each row's label (and the text's length),
 * then applies its split steps in order with `seed` (each as scikit-learn's train_test_split) to row indices. A
 * step's `from` part is consumed unless a step output reuses its name. A file part with at most `holdTextChars`
 * characters of text (and a stored size that allows it) keeps its texts, so streamParts need not read it again;
 * otherwise memory grows with the row count, never with the text. Writes nothing.
 */
export async function planDataset(name: string, spec: DatasetConfig, dataStore: BlobStore, seed: number, holdTextChars = 0): Promise<DatasetPlan> {
  checkLabels(name, spec);
  const labels: Record<string, Int32Array> = {};
  const textChars: Record<string, number> = {};
  const texts: Record<string, string[] | undefined> = {};
  const parts = new Map<string, PartRows>();
  const files: LoadedFile[] = [];
  const skipped: DatasetPlan['skipped'] = { count: 0, first: [] };
  for (const [part, file] of Object.entries(spec.files)) {
    const classes = new GrowableInt32();
    let chars = 0;
    let held: string[] | undefined = (await mayHold(dataStore, file.path, holdTextChars)) ? [] : undefined;
    const scan = await scanTable(dataStore, file, { labels: spec.labels, onBadRow: spec.onBadRow }, (example) => {
      classes.push(example.label);
      chars += example.text.length;
      // Past the bound the texts are dropped, and streamParts reads the file again instead.
      if (held !== undefined) {
        if (chars > holdTextChars) held = undefined;
        else held.push(example.text);
      }
    });
    labels[part] = classes.toArray();
    textChars[part] = chars;
    texts[part] = held;
    parts.set(part, { file: part, rows: Uint32Array.from({ length: scan.rows }, (_, i) => i) });
    files.push({ part, key: file.path, sha256: scan.sha256, bytes: scan.bytes, rows: scan.rows });
    skipped.count += scan.skippedCount;
    skipped.first.push(...scan.skipped.slice(0, SKIPPED_LISTED - skipped.first.length));
  }
  spec.splits.forEach((step, i) => {
    const where = `dataset "${name}" splits[${i}]`;
    const from = parts.get(step.from);
    if (from === undefined) {
      throw new ConfigError(`${where}: "from" is "${step.from}", which is no part at this step; expected one of ${[...parts.keys()].map((p) => `"${p}"`).join(', ')}`);
    }
    if (step.train === step.test) throw new ConfigError(`${where}: train and test are both "${step.train}"; expected two different names`);
    parts.delete(step.from);
    for (const out of [step.train, step.test]) {
      if (parts.has(out)) throw new ConfigError(`${where}: output "${out}" would replace the existing part "${out}"; choose another name`);
    }
    let split;
    try {
      split = splitPositions(from.rows.length, step.testSize, seed);
    } catch (err) {
      throw new ConfigError(`${where}: ${(err as Error).message}`, { cause: err });
    }
    parts.set(step.train, { file: from.file, rows: split.train.map((i) => from.rows[i]!) });
    parts.set(step.test, { file: from.file, rows: split.test.map((i) => from.rows[i]!) });
  });
  return { files, skipped, labels, textChars, texts, parts: Object.fromEntries(parts) };
}

/** The class index of each row of a part, in the part's order. */
export function partLabels(plan: DatasetPlan, part: PartRows): Int32Array {
  const labels = plan.labels[part.file]!;
  return Int32Array.from(part.rows, (r) => labels[r]!);
}

/**
 * For each row of a part (in the part's order), its line in a file that lists the part's rows in file order, as
 * streamParts hands them over: 0-based.
 */
export function fileOrderLines(part: PartRows): Uint32Array {
  const at = new Int32Array(part.rows.reduce((max, r) => Math.max(max, r + 1), 0)).fill(-1);
  part.rows.forEach((r, i) => (at[r] = i));
  const lines = new Uint32Array(part.rows.length);
  let line = 0;
  for (const i of at) if (i >= 0) lines[i] = line++;
  return lines;
}

/** Receives each row of a part, with the part's name, in the order of the part's file. */
export type PartVisitor = (part: string, example: Example) => void | Promise<void>;

/**
 * Reads each file of a planned dataset again (unless the plan holds its texts) and hands every row of `parts` (a
 * plan's parts, possibly capped) to `visit`, in file order, without holding the file. A row belongs to at most one
 * part: split steps partition their `from` part. Fails when a file no longer holds what `planDataset` read (checked
 * row by row, and by sha256 before returning), so a caller that commits its output only after this returns never
 * mixes two versions of a file.
 */
export async function streamParts(spec: DatasetConfig, dataStore: BlobStore, plan: DatasetPlan, parts: Record<string, PartRows>, visit: PartVisitor): Promise<void> {
  for (const read of plan.files) {
    const names = Object.keys(parts).filter((p) => parts[p]!.file === read.part);
    if (names.length === 0) continue;
    const file = spec.files[read.part]!;
    const owner = new Int32Array(read.rows).fill(-1);
    for (const [n, name] of names.entries()) {
      for (const r of parts[name]!.rows) {
        if (owner[r] !== -1) throw new InternalError(`row ${r} of file part "${read.part}" is in both part "${names[owner[r]!]}" and part "${name}"`);
        owner[r] = n;
      }
    }
    const labels = plan.labels[read.part]!;
    const held = plan.texts[read.part];
    if (held !== undefined) {
      // Held by the first read: the rows as read then, no second read that could see another version of the file.
      for (let row = 0; row < held.length; row++) {
        const n = owner[row]!;
        if (n >= 0) await visit(names[n]!, { text: held[row]!, label: labels[row]! });
      }
      continue;
    }
    const changed = (what: string) =>
      new DataError(fileUrl(dataStore, file.path), displayName(dataStore, file.path), undefined, `changed while being read: ${what}; run again to read the new file`);
    let row = 0;
    const scan = await scanTable(dataStore, file, { labels: spec.labels, onBadRow: spec.onBadRow }, async (example) => {
      if (row >= read.rows || example.label !== labels[row]) throw changed(`row ${row + 1} differs from the first read`);
      const n = owner[row++]!;
      if (n >= 0) await visit(names[n]!, example);
    });
    if (scan.sha256 !== read.sha256 || scan.rows !== read.rows) throw changed(`sha256 ${read.sha256} on the first read, ${scan.sha256} on the second`);
  }
}

/** Text decompresses to at most about this many times its gzip size (IMDB's reviews: 2.5×). */
const GZIP_EXPANSION = 5;

/** Whether a file's stored size says its text may fit in `holdTextChars`: a large file is not held even briefly. */
async function mayHold(store: BlobStore, key: string, holdTextChars: number): Promise<boolean> {
  if (holdTextChars <= 0) return false;
  const info = await store.head(key);
  return info !== undefined && info.size * (key.endsWith('.gz') ? GZIP_EXPANSION : 1) <= holdTextChars;
}

/** An Int32Array that grows as values are pushed (a row's label costs 4 bytes, not a boxed array slot). */
class GrowableInt32 {
  private data = new Int32Array(1024);
  private length = 0;

  push(value: number): void {
    if (this.length === this.data.length) {
      const grown = new Int32Array(2 * this.length);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = value;
  }

  toArray(): Int32Array {
    return this.data.slice(0, this.length);
  }
}

/** Every class index the labels map to must name a class. */
function checkLabels(name: string, spec: DatasetConfig): void {
  for (const [raw, index] of Object.entries(spec.labels)) {
    if (index >= spec.classNames.length) {
      throw new ConfigError(
        `dataset "${name}": label "${raw}" maps to class ${index}, but classNames has ${spec.classNames.length} entries (indexes 0-${spec.classNames.length - 1})`,
      );
    }
  }
}
