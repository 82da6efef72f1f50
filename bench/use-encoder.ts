/**
 * Throughput of the USE-lite encoder for `npm run bench`: texts/s per batch size on short sentences (SST-2) and
 * long reviews (IMDB), in this process and across worker threads (the way featurize runs locally).
 */
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { parse } from 'csv-parse';
import { runPool } from '../src/workflow/pool.js';
import { createUseEncoder, DEFAULT_USE_BATCH_SIZE } from '../src/features/use/encoder.js';
import type { BenchTaskInput, BenchTaskOutput } from './use-task.js';

/** A named list of texts to embed. */
export interface UseBenchCorpus {
  name: string;
  texts: readonly string[];
}

/** The grid to measure. */
export interface UseBenchOptions {
  corpora: readonly UseBenchCorpus[];
  batchSizes: readonly number[];
  /** Worker counts for the pool measurement (each worker loads its own model); empty skips it. */
  workers?: readonly number[];
  /** Called after each measured cell, e.g. to print progress. */
  onRow?: (row: UseBenchRow) => void;
}

/** One measured cell. */
export interface UseBenchRow {
  corpus: string;
  /** `in-process` (model loaded and warmed up first) or `pool×N` (worker start and model load included). */
  mode: string;
  backend: string;
  batchSize: number;
  texts: number;
  /** Mean USE tokens per text. */
  meanTokens: number;
  seconds: number;
  textsPerSecond: number;
  /** Texts per second of this process's CPU time (all threads): less sensitive to other load on the machine. */
  textsPerCpuSecond: number;
}

/** Reads the `review` column of the first `n` rows of the gzipped IMDB CSV, without reading the rest. */
export async function readImdbReviews(path: string, n: number): Promise<string[]> {
  const reviews: string[] = [];
  const parser = createReadStream(path).pipe(createGunzip()).pipe(parse({ columns: true, to: n }));
  for await (const record of parser as AsyncIterable<Record<string, string>>) {
    const review = record.review;
    if (review === undefined) throw new Error(`${path}: expected a "review" column`);
    reviews.push(review);
  }
  if (reviews.length < n) throw new Error(`${path}: has ${reviews.length} rows, the benchmark needs ${n}`);
  return reviews;
}

function chunk<T>(items: readonly T[], parts: number): T[][] {
  const size = Math.ceil(items.length / parts);
  return Array.from({ length: parts }, (_, i) => items.slice(i * size, (i + 1) * size));
}

/** Measures USE-lite throughput over corpora × batch sizes (in-process), then corpora × worker counts (pool). */
export async function benchUse(options: UseBenchOptions): Promise<UseBenchRow[]> {
  const rows: UseBenchRow[] = [];
  const emit = (row: UseBenchRow): void => {
    rows.push(row);
    options.onRow?.(row);
  };
  for (const batchSize of options.batchSizes) {
    const encoder = await createUseEncoder({ batchSize });
    try {
      for (const corpus of options.corpora) {
        await encoder.embed(corpus.texts.slice(0, batchSize));
        const cpuBefore = process.cpuUsage();
        const started = performance.now();
        await encoder.embed(corpus.texts);
        const seconds = (performance.now() - started) / 1000;
        const cpu = process.cpuUsage(cpuBefore);
        emit({
          corpus: corpus.name,
          mode: 'in-process',
          backend: encoder.backend,
          batchSize,
          texts: corpus.texts.length,
          meanTokens: encoder.countTokens(corpus.texts) / corpus.texts.length,
          seconds,
          textsPerSecond: corpus.texts.length / seconds,
          textsPerCpuSecond: corpus.texts.length / ((cpu.user + cpu.system) / 1e6),
        });
      }
    } finally {
      await encoder.close();
    }
  }
  for (const workers of options.workers ?? []) {
    for (const corpus of options.corpora) {
      const tasks = chunk(corpus.texts, workers).map((texts, i) => ({ id: `${corpus.name}-${i}`, input: { texts } }));
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      const outputs = await runPool<BenchTaskInput, BenchTaskOutput>(tasks, {
        handler: new URL('./use-task.ts', import.meta.url),
        workers,
        retries: 0,
      });
      const seconds = (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      emit({
        corpus: corpus.name,
        mode: `pool×${workers}`,
        backend: outputs[0]!.backend,
        batchSize: DEFAULT_USE_BATCH_SIZE,
        texts: corpus.texts.length,
        meanTokens: outputs.reduce((s, o) => s + o.tokens, 0) / corpus.texts.length,
        seconds,
        textsPerSecond: corpus.texts.length / seconds,
        textsPerCpuSecond: corpus.texts.length / ((cpu.user + cpu.system) / 1e6),
      });
    }
  }
  return rows;
}
