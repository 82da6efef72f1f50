/**
 * Seconds per training epoch of the BoW MLP in the default experiment's shape (10,000-term counts, 512-256-128-64,
 * dropout 0.3, batch 32) on SST-2 sentences, per engine: the WebAssembly engine local runs use, and the TensorFlow.js
 * model on the native "tensorflow" backend (tfjs-node, the CPU twin of the trainer image's tfjs-node-gpu). Each
 * engine runs in a child process of its own: loading the native binding changes TensorFlow.js process-wide.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { loadTfjsNode } from '../scripts/tfjs-node/binding.js';
import { resolveDataRoot } from '../src/data/data-root.js';
import { fitBow, transformBow } from '../src/features/bow.js';
import { takeRows, type Features } from '../src/matrix/features.js';
import type { MlpEngine, MlpSpec } from '../src/model/engine.js';
import { Xoshiro128 } from '../src/model/rng.js';
import { TfjsMlp } from '../src/model/tfjs-mlp.js';
import { WasmMlp } from '../src/model/wasm-mlp.js';

/** The engines measured: WASM with lazy or dense first-layer Adam, and tfjs on libtensorflow (always dense Adam). */
export type EpochEngine = 'wasm-lazy' | 'wasm-dense' | 'tensorflow';

/** What one epoch cost. */
export interface EpochBenchResult {
  engine: string;
  sentences: number;
  steps: number;
  inputSize: number;
  seconds: number;
  cpuSeconds: number;
  meanLoss: number;
}

const BATCH = 32;

/** The experiment's BoW model for `inputSize` terms. */
function bowSpec(inputSize: number, sparseAdam: MlpSpec['sparseAdam']): MlpSpec {
  return { inputSize, hidden: [512, 256, 128, 64], classes: 2, dropout: 0.3, sparseInput: true, sparseAdam, learningRate: 1e-4 };
}

/** Trains one epoch over the first `sentences` of SST-2 train.tsv (vocabulary fitted on the whole file); in-process. */
export async function measureEpoch(engineName: EpochEngine, sentences: number, dataRoot: string): Promise<EpochBenchResult> {
  const lines = (await readFile(join(dataRoot, 'sst2', 'train.tsv'), 'utf8')).split('\n').filter((l) => l.length > 0);
  if (lines.length < sentences) throw new Error(`sst2/train.tsv has ${lines.length} sentences, the benchmark needs ${sentences}`);
  const texts = lines.map((l) => l.slice(0, l.lastIndexOf('\t')));
  const labels = Int32Array.from(lines.slice(0, sentences), (l) => Number(l.slice(l.lastIndexOf('\t') + 1)));
  const vocab = fitBow(texts, 10000);
  const x: Features = { kind: 'sparse', m: transformBow(vocab, texts.slice(0, sentences)) };
  const batches: { x: Features; y: Int32Array }[] = [];
  for (let start = 0; start < sentences; start += BATCH) {
    const ids = Array.from({ length: Math.min(BATCH, sentences - start) }, (_, i) => start + i);
    batches.push({ x: takeRows(x, ids), y: labels.slice(start, start + ids.length) });
  }

  let engine: MlpEngine;
  if (engineName === 'tensorflow') {
    loadTfjsNode();
    await tf.setBackend('tensorflow');
    engine = new TfjsMlp(bowSpec(vocab.terms.length, 'dense'), 42);
  } else {
    engine = new WasmMlp(bowSpec(vocab.terms.length, engineName === 'wasm-lazy' ? 'lazy' : 'dense'), 42);
  }
  const rng = new Xoshiro128([42]);
  // One untimed step: first-call costs (kernel setup, memory growth) are not part of an epoch.
  engine.trainStep(batches[0]!.x, batches[0]!.y, rng);
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  let lossSum = 0;
  for (const b of batches) lossSum += engine.trainStep(b.x, b.y, rng);
  const seconds = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);
  const result = {
    engine: engine.name,
    sentences,
    steps: batches.length,
    inputSize: vocab.terms.length,
    seconds,
    cpuSeconds: (used.user + used.system) / 1e6,
    meanLoss: lossSum / batches.length,
  };
  engine.dispose();
  return result;
}

/** Runs measureEpoch in a child process (the native binding must not leak into the benchmark's own process). */
export function benchEpoch(engine: EpochEngine, sentences: number): Promise<EpochBenchResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), engine, String(sentences)], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      // libtensorflow's info lines (oneDNN, CPU features) would bury the table's progress lines.
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: process.env.TF_CPP_MIN_LOG_LEVEL ?? '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as EpochBenchResult) : reject(new Error(`epoch benchmark (${engine}) exited ${code}`))));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [engine, sentences] = process.argv.slice(2) as [EpochEngine, string];
  const result = await measureEpoch(engine, Number(sentences), resolveDataRoot().dir);
  process.stdout.write(JSON.stringify(result));
}
