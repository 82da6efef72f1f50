import { readFile } from 'node:fs/promises';
import { BertEncoder } from '../src/features/bert/encoder.js';
import type { Pooling } from '../src/features/bert/pooling.js';

/** A model folder to benchmark, with a display name. */
export interface BenchModel {
  name: string;
  dir: string;
}

/** The grid to measure. */
export interface EncoderBenchOptions {
  models: readonly BenchModel[];
  texts: readonly string[];
  batchSizes: readonly number[];
  threads: readonly number[];
  /** Length bucketing on/off (off = input order, as naive code batches). */
  bucketing: readonly boolean[];
  /** ONNX Runtime spin-waiting on/off (default: off only, the encoder's default). */
  spinWait?: readonly boolean[];
  pooling?: Pooling;
  /** Called after each measured cell, e.g. to print progress. */
  onRow?: (row: EncoderBenchRow) => void;
}

/** One measured cell of the grid. */
export interface EncoderBenchRow {
  model: string;
  batchSize: number;
  threads: number;
  bucketing: boolean;
  spinWait: boolean;
  texts: number;
  seconds: number;
  textsPerSecond: number;
  /** Process CPU time (all threads) per second of wall time: how many cores the run kept busy. */
  cpuUtilisation: number;
  /** Texts per second of process CPU time: comparable across runs on a machine shared with other work. */
  textsPerCpuSecond: number;
  /** Padded token positions computed per real token (1 = no padding). */
  paddingOverhead: number;
}

/** Reads the first `n` sentences of an SST-2 TSV file (`sentence<TAB>label` lines). */
export async function readSst2Sentences(path: string, n: number): Promise<string[]> {
  const lines = (await readFile(path, 'utf8')).split('\n').filter((l) => l.length > 0);
  if (lines.length < n) throw new Error(`${path}: has ${lines.length} lines, the benchmark needs ${n}`);
  return lines.slice(0, n).map((line, i) => {
    const tab = line.lastIndexOf('\t');
    if (tab < 0) throw new Error(`${path}:${i + 1}: expected "sentence<TAB>label"`);
    return line.slice(0, tab);
  });
}

/**
 * Encoder throughput (texts/s, tokenization and pooling included) over models × threads × batch sizes × bucketing.
 * Each session is warmed up on one batch first, so model loading and first-run allocation are not timed.
 */
export async function benchEncoder(options: EncoderBenchOptions): Promise<EncoderBenchRow[]> {
  const rows: EncoderBenchRow[] = [];
  const pooling = options.pooling ?? 'mean';
  for (const model of options.models) {
    const sessions = options.threads.flatMap((t) => (options.spinWait ?? [false]).map((s) => [t, s] as const));
    for (const [threads, spinWait] of sessions) {
      const encoder = await BertEncoder.load(model.dir, { threads, spinWait });
      try {
        await encoder.encode(options.texts.slice(0, Math.max(...options.batchSizes)), { poolings: [pooling] });
        for (const batchSize of options.batchSizes) {
          for (const bucketing of options.bucketing) {
            const cpuBefore = process.cpuUsage();
            const started = performance.now();
            const result = await encoder.encode(options.texts, { poolings: [pooling], batchSize, bucketing });
            const seconds = (performance.now() - started) / 1000;
            const cpu = process.cpuUsage(cpuBefore);
            const row: EncoderBenchRow = {
              model: model.name,
              batchSize,
              threads,
              bucketing,
              spinWait,
              texts: result.rows,
              seconds,
              textsPerSecond: result.rows / seconds,
              cpuUtilisation: (cpu.user + cpu.system) / 1e6 / seconds,
              textsPerCpuSecond: result.rows / ((cpu.user + cpu.system) / 1e6),
              paddingOverhead: result.paddedTokens / result.tokens,
            };
            rows.push(row);
            options.onRow?.(row);
          }
        }
      } finally {
        await encoder.close();
      }
    }
  }
  return rows;
}
