import type { BlobStore } from '../store/blob-store.js';
import type { MlpSpec, OptimizerState, ParamSet, Tensor } from '../model/engine.js';
import { Readable } from 'node:stream';
import { decodeSafetensors, safetensorsParts } from '../model/safetensors.js';
import type { EpochMetrics } from '../run/records.js';
import { InvalidDataError } from '../errors/index.js';

/** What a checkpoint folder's state.json records; written last, so its presence marks the folder complete. */
export interface CheckpointState {
  model: string;
  epoch: number;
  history: EpochMetrics[];
  bestEpoch: number;
  bestValAccuracy: number;
  engine: string;
  optimizer: string;
  /**
   * Whether `optimizer.safetensors` belongs to this checkpoint. Checkpoints written before this was recorded kept
   * the file only when it belonged; since then a stale file of an earlier save of the folder may stay (ignored).
   */
  hasOptimizerState?: boolean;
  spec: MlpSpec;
}

/** A loaded checkpoint. */
export interface Checkpoint {
  state: CheckpointState;
  params: ParamSet;
  optimizer?: OptimizerState;
}

/**
 * Writes `<dir>/model.safetensors`, `<dir>/optimizer.safetensors` (when given), then `<dir>/state.json`, which
 * records whether the optimizer state belongs to the checkpoint. Nothing is deleted (the deployment's roles may not
 * delete objects): an optimizer file left from an earlier save of the folder stays, and loadCheckpoint ignores it.
 */
export async function saveCheckpoint(store: BlobStore, dir: string, ckpt: Checkpoint): Promise<void> {
  // Streamed from the tensors' own memory: no second copy of the weights and moments (tens of MB) to encode them.
  const write = (key: string, tensors: Map<string, Tensor>, metadata: Record<string, string>) =>
    store.putStream(key, Readable.from(safetensorsParts(tensors, metadata), { objectMode: false }));
  await write(`${dir}/model.safetensors`, ckpt.params, { format: 'textshift-mlp', model: ckpt.state.model });
  if (ckpt.optimizer) {
    const moments = new Map([
      ...[...ckpt.optimizer.m].map(([k, t]) => [`m/${k}`, t] as const),
      ...[...ckpt.optimizer.v].map(([k, t]) => [`v/${k}`, t] as const),
    ]);
    await write(`${dir}/optimizer.safetensors`, moments, { format: 'textshift-adam', step: String(ckpt.optimizer.step) });
  }
  const state: CheckpointState = { ...ckpt.state, hasOptimizerState: ckpt.optimizer !== undefined };
  await store.put(`${dir}/state.json`, JSON.stringify(state, null, 2));
}

/**
 * Loads a complete checkpoint folder, or undefined when its state.json is absent (never written or unfinished).
 * With `withOptimizer`, the optimizer state comes along when the checkpoint has one.
 */
export async function loadCheckpoint(store: BlobStore, dir: string, withOptimizer: boolean): Promise<Checkpoint | undefined> {
  const stateBuf = await store.get(`${dir}/state.json`);
  if (!stateBuf) return undefined;
  const state = JSON.parse(stateBuf.toString('utf8')) as CheckpointState;
  const { tensors: params } = decodeSafetensors(await store.getOrThrow(`${dir}/model.safetensors`), `${store.url}/${dir}/model.safetensors`);
  if (!withOptimizer || state.hasOptimizerState === false) return { state, params };
  const key = `${dir}/optimizer.safetensors`;
  const { tensors, metadata } = decodeSafetensors(await store.getOrThrow(key), `${store.url}/${key}`);
  const pick = (prefix: string): ParamSet =>
    new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
  const step = Number(metadata.step);
  if (!Number.isInteger(step) || step < 0) throw new InvalidDataError(`${store.url}/${key}: metadata "step" must be a non-negative integer`);
  return { state, params, optimizer: { step, m: pick('m/'), v: pick('v/') } };
}

/** Epochs that have a complete checkpoint under a model folder, ascending. */
export async function checkpointEpochs(store: BlobStore, modelDir: string): Promise<number[]> {
  const epochs = new Set<number>();
  for (const { key } of await store.list(`${modelDir}/epoch_`)) {
    const m = /\/epoch_(\d+)\/state\.json$/.exec(key);
    if (m) epochs.add(Number(m[1]));
  }
  return [...epochs].sort((a, b) => a - b);
}
