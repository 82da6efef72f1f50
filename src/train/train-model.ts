import type { BlobStore } from '../store/blob-store.js';
import { paramShapes, type MlpEngine } from '../model/engine.js';
import { takeRows, type Features } from '../matrix/features.js';
import { permutation, Xoshiro128 } from '../model/rng.js';
import { evaluateModel } from '../evaluate/evaluate.js';
import type { TrainingConfig } from '../config/experiment.js';
import type { EpochMetrics } from '../run/records.js';
import type { Reporter } from '../run/reporter.js';
import { checkpointEpochs, loadCheckpoint, saveCheckpoint, type Checkpoint, type CheckpointState } from './checkpoints.js';
import { InternalError, InvalidDataError, PermanentError, TransientError } from '../errors/index.js';

/** Labelled features of one split. */
export interface LabelledSet {
  x: Features;
  y: Int32Array;
}

export interface TrainModelOptions {
  store: BlobStore;
  /** Model folder, e.g. `runs/<id>/models/bow_1`. */
  dir: string;
  model: string;
  engine: MlpEngine;
  train: LabelledSet;
  val: LabelledSet;
  training: TrainingConfig;
  /** Seeds shuffling and dropout together with the stage index and epoch. */
  seed: number;
  stageIndex: number;
  reporter: Reporter;
  /** Called after each epoch's metrics are recorded (TensorBoard logs, tests). */
  onEpoch?: (m: EpochMetrics) => void | Promise<void>;
}

/** Outcome of training one model; the engine holds the best weights afterwards. */
export interface TrainedModel {
  history: EpochMetrics[];
  bestEpoch: number;
  bestValAccuracy: number;
  resumedFromEpoch: number;
}

/**
 * Trains with seeded shuffling and dropout, checkpoints every `checkpointEvery` epochs (weights, optimizer state,
 * metrics), keeps a copy of the best model by validation accuracy, and resumes from the latest complete
 * checkpoint: shuffles and dropout masks are derived from (seed, stage, epoch), so a resumed run replays
 * exactly what an uninterrupted one computes.
 */
export async function trainModel(o: TrainModelOptions): Promise<TrainedModel> {
  const { store, dir, engine, training } = o;
  const optimizerName = engine.spec.sparseInput ? `adam(first layer: ${engine.spec.sparseAdam})` : 'adam';
  let history: EpochMetrics[] = [];
  let bestEpoch = 0;
  let bestValAccuracy = -1;
  let startEpoch = 1;

  const done = await loadCheckpoint(store, `${dir}/best`, false);
  const finished = await store.get(`${dir}/summary.json`);
  if (done && finished) {
    // The model finished in an earlier attempt: reuse it.
    engine.setParams(done.params);
    const s = JSON.parse(finished.toString('utf8')) as TrainedModel;
    o.reporter.log(`${o.model}: already trained (best epoch ${s.bestEpoch}), skipping`);
    return { ...s, resumedFromEpoch: training.epochs };
  }

  const resumable = await latestUsableCheckpoint(o);
  if (resumable) {
    const { epoch, ckpt } = resumable;
    engine.setParams(ckpt.params);
    engine.setOptimizerState(ckpt.optimizer!);
    history = ckpt.state.history;
    bestEpoch = ckpt.state.bestEpoch;
    bestValAccuracy = ckpt.state.bestValAccuracy;
    startEpoch = epoch + 1;
    o.reporter.log(`${o.model}: resuming after epoch ${epoch} (checkpoint ${dir}/epoch_${epoch})`);
  }

  const n = o.train.y.length;
  const batch = training.batchSize;
  const steps = Math.ceil(n / batch);
  const stateOf = (epoch: number): CheckpointState => ({
    model: o.model,
    epoch,
    history,
    bestEpoch,
    bestValAccuracy,
    engine: engine.name,
    optimizer: optimizerName,
    spec: engine.spec,
  });

  for (let epoch = startEpoch; epoch <= training.epochs; epoch++) {
    const t0 = Date.now();
    const rng = new Xoshiro128([o.seed, o.stageIndex, epoch]);
    const order = permutation(n, rng);
    const task = o.reporter.task(`${o.model} epoch ${epoch}/${training.epochs}`, steps, 'batches');
    let lossSum = 0;
    for (let s = 0; s < steps; s++) {
      const ids = order.subarray(s * batch, Math.min(n, (s + 1) * batch));
      const x = takeRows(o.train.x, ids);
      const y = new Int32Array(ids.length);
      for (let i = 0; i < ids.length; i++) y[i] = o.train.y[ids[i]!]!;
      lossSum += engine.trainStep(x, y, rng);
      task.tick();
    }
    task.done();
    const val = evaluateModel(engine, o.val.x, o.val.y);
    const metrics: EpochMetrics = {
      epoch,
      trainLoss: lossSum / steps,
      valLoss: val.loss,
      valAccuracy: val.accuracy,
      seconds: (Date.now() - t0) / 1000,
    };
    history.push(metrics);
    o.reporter.log(
      `${o.model} epoch ${epoch}: train loss ${metrics.trainLoss.toFixed(4)}, val loss ${metrics.valLoss.toFixed(4)}, val acc ${metrics.valAccuracy.toFixed(4)} (${metrics.seconds.toFixed(1)}s)`,
    );
    if (val.accuracy > bestValAccuracy) {
      bestValAccuracy = val.accuracy;
      bestEpoch = epoch;
      await saveCheckpoint(store, `${dir}/best`, { state: stateOf(epoch), params: engine.getParams() });
    }
    if (epoch % training.checkpointEvery === 0 || epoch === training.epochs) {
      await saveCheckpoint(store, `${dir}/epoch_${epoch}`, {
        state: stateOf(epoch),
        params: engine.getParams(),
        optimizer: engine.getOptimizerState(),
      });
    }
    await o.onEpoch?.(metrics);
  }

  const best = await loadCheckpoint(store, `${dir}/best`, false);
  if (!best) throw new InternalError(`${dir}/best: no best model was saved (no epoch ran?)`);
  engine.setParams(best.params);
  const result: TrainedModel = { history, bestEpoch, bestValAccuracy, resumedFromEpoch: startEpoch - 1 };
  await store.put(`${dir}/summary.json`, JSON.stringify(result, null, 2));
  return result;
}

/**
 * The latest complete epoch checkpoint that loads and fits the engine (every weight and moment of the right size),
 * or undefined: training then starts at epoch 1. A checkpoint that cannot be used (a truncated or corrupt file, a
 * file missing, tensors of other shapes) is skipped with a warning for the one before it, which replays to the same
 * result; a transient read error is thrown, not skipped.
 */
async function latestUsableCheckpoint(o: TrainModelOptions): Promise<{ epoch: number; ckpt: Checkpoint } | undefined> {
  const epochs = (await checkpointEpochs(o.store, o.dir)).filter((e) => e <= o.training.epochs);
  for (const epoch of epochs.reverse()) {
    const where = `${o.store.url}/${o.dir}/epoch_${epoch}`;
    try {
      const ckpt = await loadCheckpoint(o.store, `${o.dir}/epoch_${epoch}`, true);
      if (!ckpt) continue;
      if (!ckpt.optimizer) throw new InvalidDataError('it holds no optimizer state');
      const expected = paramShapes(o.engine.spec);
      for (const [part, tensors] of [['weights', ckpt.params], ['first moments', ckpt.optimizer.m], ['second moments', ckpt.optimizer.v]] as const) {
        for (const [name, shape] of expected) {
          const size = shape.reduce((a, b) => a * b, 1);
          const got = tensors.get(name)?.data.length;
          if (got !== size) throw new InvalidDataError(`its ${part} have ${got ?? 'no'} values for ${name}, the model has ${size}`);
        }
      }
      return { epoch, ckpt };
    } catch (err) {
      if (err instanceof TransientError || !(err instanceof PermanentError || err instanceof SyntaxError)) throw err;
      const previous = epochs.find((e) => e < epoch);
      o.reporter.log(
        `warning: ${o.model}: checkpoint ${where} cannot be used (${(err as Error).message}); ` +
          (previous === undefined ? 'training starts from epoch 1' : `resuming from the one before it, epoch_${previous}`),
      );
    }
  }
  return undefined;
}
