/**
 * textshift's side of the `--peers` comparison, run as a child process so its wall time and peak RSS are measured
 * the way the peers' are. It ends with the peers' final JSON line (`{"results": …, "timings": …}`).
 *
 *   bow <threads> [dataRoot]                                  the default experiment's BoW family, full data
 *   encoder <texts.json> <outDir> <modelDir> <threads> <maxLength>  embed each corpus of texts.json, mean pooling
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BertEncoder } from '../../src/features/bert/encoder.js';
import { writeNpyFile } from '../../src/matrix/npy.js';
import { runBenchExperiment } from '../run-experiment.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Runs the BoW family with `threads` featurize workers and prints [SST-2, IMDB] test accuracy per model. */
async function bow(threads: number, dataRoot: string | undefined): Promise<void> {
  const { run, wall } = await runBenchExperiment({
    root,
    experiment: 'experiments/sst2-imdb.json',
    quick: false,
    families: ['bow'],
    workers: threads,
    ...(dataRoot ? { dataRoot } : {}),
  });
  const acc = (model: string, dataset: string) => {
    const e = run.results.evaluations.find((x) => x.model === model && x.dataset === dataset);
    if (!e) throw new Error(`the run has no ${model} evaluation on ${dataset}`);
    return e.accuracy;
  };
  const results = { bow_1: [acc('bow_1', 'sst2'), acc('bow_1', 'imdb')], bow_2: [acc('bow_2', 'sst2'), acc('bow_2', 'imdb')] };
  process.stdout.write(`${JSON.stringify({ results, timings: { total_s: wall } })}\n`);
}

/** Embeds every corpus of `textsPath` (`{"sst2": [...], "imdb": [...]}`) after one warm-up batch, writing `<out>/<corpus>.npy`. */
async function encoder(textsPath: string, out: string, modelDir: string, threads: number, maxLength: number): Promise<void> {
  const corpora = JSON.parse(readFileSync(textsPath, 'utf8')) as Record<string, string[]>;
  mkdirSync(out, { recursive: true });
  const t0 = performance.now();
  const enc = await BertEncoder.load(modelDir, { threads });
  const timings: Record<string, number> = { load_s: (performance.now() - t0) / 1000 };
  const results: Record<string, { texts: number; seconds: number; tokens: number }> = {};
  try {
    for (const [name, texts] of Object.entries(corpora)) {
      // Warm-up (first-run allocations), as the peer does, so both time steady-state encoding.
      await enc.encode(texts.slice(0, 32), { poolings: ['mean'], maxLength });
      const started = performance.now();
      const r = await enc.encode(texts, { poolings: ['mean'], maxLength });
      results[name] = { texts: r.rows, seconds: (performance.now() - started) / 1000, tokens: r.tokens };
      await writeNpyFile(join(out, `${name}.npy`), { data: r.embeddings.mean, rows: r.rows, cols: r.dim });
    }
  } finally {
    await enc.close();
  }
  process.stdout.write(`${JSON.stringify({ results, timings })}\n`);
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'bow') await bow(Number(args[0]), args[1]);
else if (mode === 'encoder') await encoder(args[0]!, args[1]!, args[2]!, Number(args[3]), Number(args[4]));
else throw new Error(`textshift-child: unknown mode ${mode}; expected bow or encoder`);
