// `npm run bench [-- --only a,b]`: speed and memory of textshift's hot paths on the real data, as a table.
// `npm run bench -- --peers [--only textshift,torch-bag-sparse,...]`: textshift against the peers (bench/peers/).
// Experiment runs execute in a child process each (fresh output folder, nothing cached) so peak RSS is theirs.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveDataRoot } from '../src/data/data-root.js';
import { benchLoadImdb } from './data-load.js';
import { benchPrepare, scaledDataRoot } from './prepare.js';
import { benchBow } from './bow.js';
import { benchEpoch, type EpochEngine } from './mlp-epoch.js';
import { benchEncoder, readSst2Sentences } from './bert-encoder.js';
import { benchUse, readImdbReviews } from './use-encoder.js';
import { ensureTestModel } from '../scripts/onnx/test-model.js';
import { alignColumns } from '../src/format/text.js';
import { runBenchExperiment } from './run-experiment.js';
import { parsePeersArgs, runPeers } from './peers/peers.js';

interface Row {
  name: string;
  wall: number;
  cpu?: number;
  rssMb?: number;
  note: string;
}

const root = fileURLToPath(new URL('..', import.meta.url));

/** Child mode: run one experiment in-process (optionally only some feature families) and print its measurements as JSON. */
async function child(experiment: string, quick: boolean, families: string[] | undefined): Promise<void> {
  const { run, wall, cpu } = await runBenchExperiment({ root, experiment, quick, ...(families ? { families } : {}) });
  const acc = run.results.evaluations.map((e) => `${e.model}/${e.dataset} ${e.accuracy.toFixed(4)}`).join(', ');
  process.stdout.write(JSON.stringify({ wall, cpu, rssMb: process.resourceUsage().maxRSS / 1024, note: acc }));
}

function runChild(experiment: string, quick: boolean, families?: string[]): Promise<Omit<Row, 'name'>> {
  return spawnChild(['--child', experiment, ...(quick ? ['--quick'] : []), ...(families ? ['--families', families.join(',')] : [])]);
}

/** Runs this file in a child process with `argv` and returns the measurements it prints. */
function spawnChild(argv: string[]): Promise<Omit<Row, 'name'>> {
  return new Promise((resolve, reject) => {
    const args = ['--import', 'tsx', fileURLToPath(import.meta.url), ...argv];
    const p = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as Omit<Row, 'name'>) : reject(new Error(`benchmark child exited ${code}`))));
  });
}

/**
 * Prepare alone (child process) on the default experiment with IMDB's rows repeated `times` times (a generated data
 * root in a temp folder, removed afterwards): gzipped as the real file, or as one plain CSV.
 */
async function prepareRow(times: number, gzip: boolean): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'textshift-bench-prepare-'));
  try {
    const data = await scaledDataRoot(resolveDataRoot({ cwd: root }).dir, dir, join(root, 'experiments/sst2-imdb.json'), times, gzip);
    const measured = await spawnChild(['--prepare-child', data.experimentPath, data.dir]);
    const size = `${(data.csvBytes / 1e6).toFixed(0)} MB of CSV${gzip ? ', gzipped' : ''}`;
    return { name: `Prepare, IMDB x${times} (default experiment)`, ...measured, note: `${measured.note}, ${size}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const benches: Record<string, () => Promise<Row[]>> = {
  'bow-full': async () => [{ name: 'BoW experiment, full data (load -> results table)', ...(await runChild('experiments/sst2-imdb.json', false, ['bow'])) }],
  'bow-quick': async () => [{ name: 'BoW experiment, --quick', ...(await runChild('experiments/sst2-imdb.json', true, ['bow'])) }],
  // The seed lab with USE-lite: the default experiment's BERT family needs a model file in the store, this one none.
  'use-lab-full': async () => [{ name: 'seed lab with USE-lite (bow + use), full', ...(await runChild('experiments/sst2-imdb-use.json', false)) }],
  'use-lab-quick': async () => [{ name: 'seed lab with USE-lite (bow + use), --quick', ...(await runChild('experiments/sst2-imdb-use.json', true)) }],
  prepare: async () => [await prepareRow(1, true), await prepareRow(4, true)],
  'prepare-1gb': async () => [await prepareRow(16, false)],
  'load-imdb': async () => {
    const r = await benchLoadImdb();
    return [{ name: r.name, wall: r.seconds, cpu: r.cpuSeconds, note: `${r.rows} rows` }];
  },
  'bow-transform': async () => {
    const r = await benchBow(resolveDataRoot({ cwd: root }).dir);
    return [
      { name: 'BoW fit, SST-2 train (10k terms)', wall: r.sst2.fit.wallMs / 1000, cpu: r.sst2.fit.cpuMs / 1000, note: `${r.sst2.documents} docs` },
      {
        name: 'BoW transform, IMDB 50k reviews',
        wall: r.imdb.transform.wallMs / 1000,
        cpu: r.imdb.transform.cpuMs / 1000,
        note: `${r.imdb.megabytesPerSecond} MB/s, ${r.imdb.nnzPerRow} nnz/row`,
      },
    ];
  },
  // One training epoch of the BoW MLP over SST-2's train split size (5536 sentences): the trainer's TensorFlow.js model
  // on libtensorflow (needs `npm run build:tfjs-node`) against the WebAssembly engine with either first-layer Adam.
  'bow-epoch': async () => {
    const engines: [EpochEngine, string][] = [
      ['tensorflow', 'BoW MLP epoch, tfjs "tensorflow" backend (tfjs-node), dense Adam'],
      ['wasm-dense', 'BoW MLP epoch, WASM engine, dense Adam'],
      ['wasm-lazy', 'BoW MLP epoch, WASM engine, lazy Adam (local runs)'],
    ];
    const rows: Row[] = [];
    for (const [engine, name] of engines) {
      const r = await benchEpoch(engine, 5536);
      const perStep = ((1000 * r.seconds) / r.steps).toFixed(1);
      rows.push({ name, wall: r.seconds, cpu: r.cpuSeconds, note: `${r.steps} steps of 32 SST-2 sentences, ${perStep} ms/step, mean loss ${r.meanLoss.toFixed(4)}` });
    }
    return rows;
  },
  // BERT-family ONNX encoder on 1000 SST-2 sentences: generated random-weight models (tiny, and MiniLM-sized:
  // 6 layers, hidden 384), batch size x intra-op threads, with and without length bucketing.
  encoder: async () => {
    const data = resolveDataRoot({ cwd: root }).dir;
    const texts = await readSst2Sentences(join(data, 'sst2', 'train.tsv'), 1000);
    const models = [
      { name: 'tiny', dir: await ensureTestModel('tiny') },
      { name: 'MiniLM-sized', dir: await ensureTestModel('minilm') },
    ];
    const rows = await benchEncoder({ models, texts, batchSizes: [8, 32], threads: [1, 2], bucketing: [false, true] });
    return rows.map((r) => ({
      name: `encoder ${r.model}, batch ${r.batchSize}, ${r.threads} thread${r.threads > 1 ? 's' : ''}, ${r.bucketing ? 'bucketed' : 'input order'}`,
      wall: r.seconds,
      note: `${r.textsPerSecond.toFixed(0)} texts/s (${r.texts} SST-2 sentences), ${r.paddingOverhead.toFixed(2)} padded/real tokens`,
    }));
  },
  // USE-lite featurize throughput: in-process, and on the worker pool with 1 and 2 workers (model load included).
  use: async () => {
    const data = resolveDataRoot({ cwd: root }).dir;
    const corpora = [
      { name: 'SST-2', texts: await readSst2Sentences(join(data, 'sst2', 'train.tsv'), 1000) },
      { name: 'IMDB', texts: await readImdbReviews(join(data, 'imdb.csv.gz'), 200) },
    ];
    const rows = await benchUse({ corpora, batchSizes: [32], workers: [1, 2] });
    return rows.map((r) => ({
      name: `USE-lite ${r.corpus}, ${r.mode}, batch ${r.batchSize}`,
      wall: r.seconds,
      note: `${r.textsPerSecond.toFixed(1)} texts/s, ${r.textsPerCpuSecond.toFixed(1)} texts/CPU-s, ${r.meanTokens.toFixed(0)} tokens/text`,
    }));
  },
};

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--peers')) {
    process.stdout.write(await runPeers(root, parsePeersArgs(argv), (line) => process.stderr.write(`${line}\n`)));
    return;
  }
  if (argv[0] === '--prepare-child') {
    const out = mkdtempSync(join(tmpdir(), 'textshift-bench-'));
    try {
      process.stdout.write(JSON.stringify(await benchPrepare(argv[1]!, argv[2]!, out)));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
    return;
  }
  if (argv[0] === '--child') {
    const at = argv.indexOf('--families');
    return child(argv[1]!, argv.includes('--quick'), at >= 0 ? argv[at + 1]!.split(',') : undefined);
  }
  const onlyAt = argv.indexOf('--only');
  const names = onlyAt >= 0 ? argv[onlyAt + 1]!.split(',') : Object.keys(benches);
  const unknown = names.filter((n) => !(n in benches));
  if (unknown.length) throw new Error(`unknown benchmark(s) ${unknown.join(', ')}; choose from ${Object.keys(benches).join(', ')}`);
  const rows: Row[] = [];
  for (const n of names) {
    process.stderr.write(`bench ${n} ...\n`);
    rows.push(...(await benches[n]!()));
  }
  const f = (v: number | undefined, d: number) => (v === undefined ? '' : v.toFixed(d));
  process.stdout.write(
    alignColumns(
      [['benchmark', 'wall s', 'cpu s', 'peak RSS MB', 'notes'], ...rows.map((r) => [r.name, f(r.wall, 2), f(r.cpu, 2), f(r.rssMb, 0), r.note])],
      ['left', 'right', 'right', 'right', 'left'],
    ),
  );
}

await main();
