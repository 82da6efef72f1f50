import type { BlobStore } from '../store/blob-store.js';
import type { DatasetConfig } from '../config/experiment.js';
import type { SkippedRow } from '../run/records.js';
import { readTable, type Example } from './read-table.js';
import { trainTestSplit } from './split.js';
import type { LoadedFile } from '../run/records.js';
import { ConfigError } from '../errors/index.js';

/** A dataset's parts after every split step. */
export interface LoadedDataset {
  parts: Record<string, Example[]>;
  files: LoadedFile[];
  /** The first skipped rows each file lists. */
  skipped: SkippedRow[];
  /** Every skipped row. */
  skippedCount: number;
}

/**
 * Reads every file part of a dataset from the data store, then applies its split steps in order with `seed`
 * (each as scikit-learn's train_test_split). A step's `from` part is consumed unless a step output reuses its name.
 * Writes nothing.
 */
export async function loadDataset(name: string, spec: DatasetConfig, dataStore: BlobStore, seed: number): Promise<LoadedDataset> {
  checkLabels(name, spec);
  const parts = new Map<string, Example[]>();
  const files: LoadedFile[] = [];
  const skipped: SkippedRow[] = [];
  let skippedCount = 0;
  for (const [part, file] of Object.entries(spec.files)) {
    const read = await readTable(dataStore, file, { labels: spec.labels, onBadRow: spec.onBadRow });
    parts.set(part, read.examples);
    files.push({ part, key: file.path, sha256: read.sha256, bytes: read.bytes, rows: read.examples.length });
    skipped.push(...read.skipped);
    skippedCount += read.skippedCount;
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
      split = trainTestSplit(from, step.testSize, seed);
    } catch (err) {
      throw new ConfigError(`${where}: ${(err as Error).message}`, { cause: err });
    }
    parts.set(step.train, split.train);
    parts.set(step.test, split.test);
  });
  return { parts: Object.fromEntries(parts), files, skipped, skippedCount };
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
