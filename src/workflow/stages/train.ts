import { modelId, type Experiment } from '../../config/experiment.js';
import { decodeFeatures, columnBlock, concatFeatures, type Features } from '../../matrix/features.js';
import { evaluateModel } from '../../evaluate/evaluate.js';
import { parameterCount, type MlpSpec } from '../../model/engine.js';
import { createEngine } from '../../model/index.js';
import { writeModelEventFile } from '../../train/tfevents.js';
import { loadCheckpoint } from '../../train/checkpoints.js';
import { trainModel, type LabelledSet } from '../../train/train-model.js';
import { runKeys, shardResultKey } from '../../run/keys.js';
import type { Evaluation, FamilyResult, ModelSummary, ShardResult, FeatureIndex } from '../../run/records.js';
import { memoized, type StageContext } from '../context.js';
import { asStage, readManifest } from '../../run/manifest.js';
import type { TrainInput, TrainOutput } from '../stage-io.js';
import { InvalidDataError, InvalidInputError, MissingInputError } from '../../errors/index.js';

/** Loads a family's features for one dataset part from the feature cache, in row order. */
export async function loadPart(ctx: StageContext, runId: string, index: FeatureIndex, part: string): Promise<LabelledSet> {
  return memoized(ctx, `part:${runId}:${index.feature}:${part}`, async () => {
    const entry = index.parts[part];
    if (!entry) throw new InvalidDataError(`feature "${index.feature}" has no part "${part}" in run ${runId}`);
    const pieces: Features[] = [];
    for (const shardKey of entry.shards) {
      const resultBuf = await ctx.store.get(shardResultKey(shardKey));
      if (!resultBuf) throw new MissingInputError(`shard ${shardKey} has not been featurized (run the featurize stage first)`);
      const r = JSON.parse(resultBuf.toString('utf8')) as ShardResult;
      const source = `${ctx.store.url}/${r.cacheKey}`;
      pieces.push(familyColumns(index, r, decodeFeatures(r.cacheKey.endsWith('.csr') ? 'csr' : 'npy', await ctx.store.getOrThrow(r.cacheKey), source), source));
    }
    const x = concatFeatures(pieces);
    if (x.m.rows !== entry.rows) throw new InvalidDataError(`feature "${index.feature}" part ${part}: ${x.m.rows} feature rows for ${entry.rows} labels`);
    return { x, y: Int32Array.from(entry.labels) };
  });
}

/**
 * The columns of a shard's cache entry that are this family's features: all of them, or, when each row holds several
 * embeddings side by side (every pooling of a BERT-family pass), the block of the family's pooling.
 */
function familyColumns(index: FeatureIndex, shard: ShardResult, x: Features, source: string): Features {
  if (shard.blocks === undefined && index.pooling === undefined) return x;
  const block = index.pooling === undefined ? -1 : (shard.blocks?.indexOf(index.pooling) ?? -1);
  if (block < 0 || x.kind !== 'dense') {
    throw new InvalidDataError(
      `${source}: feature "${index.feature}" takes pooling ${index.pooling ?? '(none)'}, but the entry holds ${shard.blocks ? `blocks ${shard.blocks.join(', ')}` : 'one embedding per row'} (${shard.shardKey})`,
    );
  }
  return { kind: 'dense', m: columnBlock(x.m, block, shard.blocks!.length) };
}

/** The MLP shape for a family from the experiment and its feature width. */
export function mlpSpec(exp: Experiment, kind: string, inputSize: number, classes: number): MlpSpec {
  return {
    inputSize,
    hidden: exp.model.hidden,
    classes,
    dropout: exp.model.dropout,
    sparseInput: kind === 'bow',
    sparseAdam: exp.training.sparseAdam,
    learningRate: exp.training.learningRate,
  };
}

/**
 * Train one feature family: every stage in order (stage 1 from fresh weights, later stages fine-tune the best
 * model of their `from` stage with a fresh optimizer), each best model evaluated on every evaluation dataset.
 * Resumable: finished models are reused and unfinished ones continue from their latest checkpoint.
 */
export async function train(ctx: StageContext, input: TrainInput): Promise<TrainOutput> {
  const { store } = ctx;
  const keys = runKeys(input.runId);
  const manifest = await readManifest(store, input.runId);
  const exp = manifest.config;
  const spec = exp.features[input.feature];
  if (!spec) throw new InvalidInputError(`train: run ${input.runId} has no feature family "${input.feature}" (it has ${Object.keys(exp.features).join(', ')})`);

  return asStage(store, input.runId, `train:${input.feature}`, async () => {
    const index = JSON.parse((await store.getOrThrow(keys.featureIndex(input.feature))).toString('utf8')) as FeatureIndex;
    const models: ModelSummary[] = [];
    const evaluations: Evaluation[] = [];
    for (const [stageIndex, stage] of exp.stages.entries()) {
      const t0 = Date.now();
      const model = modelId(input.feature, stage.name);
      const classes = exp.datasets[stage.dataset]!.classNames.length;
      const trainSet = await loadPart(ctx, input.runId, index, `${stage.dataset}/${stage.train}`);
      const valSet = await loadPart(ctx, input.runId, index, `${stage.dataset}/${stage.val}`);
      const engine = createEngine(mlpSpec(exp, spec.kind, trainSet.x.m.cols, classes), exp.seed + stageIndex);
      if (stage.from !== undefined) {
        const from = await loadCheckpoint(store, keys.best(modelId(input.feature, stage.from)), false);
        if (!from) throw new MissingInputError(`train: ${model} fine-tunes ${modelId(input.feature, stage.from)}, which has no best model yet`);
        engine.setParams(from.params);
        engine.resetOptimizer();
      }
      const trained = await trainModel({
        store,
        dir: keys.modelDir(model),
        model,
        engine,
        train: trainSet,
        val: valSet,
        training: exp.training,
        seed: exp.seed,
        stageIndex,
        reporter: ctx.reporter,
      });
      const summary: ModelSummary = {
        model,
        feature: input.feature,
        stage: stage.name,
        dataset: stage.dataset,
        ...(stage.from !== undefined ? { from: modelId(input.feature, stage.from) } : {}),
        ...(spec.kind === 'bert' ? { pooling: spec.pooling } : {}),
        inputSize: engine.spec.inputSize,
        parameters: parameterCount(engine.spec),
        engine: engine.name,
        optimizer: engine.spec.sparseInput ? `adam, first layer ${engine.spec.sparseAdam}` : 'adam',
        epochs: trained.history,
        bestEpoch: trained.bestEpoch,
        bestValAccuracy: trained.bestValAccuracy,
        trainExamples: trainSet.y.length,
        valExamples: valSet.y.length,
        seconds: (Date.now() - t0) / 1000,
      };
      for (const dataset of exp.evaluation.datasets) {
        const test = await loadPart(ctx, input.runId, index, `${dataset}/${exp.evaluation.split}`);
        const s = evaluateModel(engine, test.x, test.y);
        evaluations.push({ model, dataset, split: exp.evaluation.split, ...s });
        ctx.reporter.log(`${model} on ${dataset}/${exp.evaluation.split}: accuracy ${s.accuracy.toFixed(4)}, loss ${s.loss.toFixed(4)}`);
      }
      engine.dispose();
      await writeModelEventFile(store, input.runId, summary, { startWallTime: t0 / 1000 });
      models.push(summary);
    }
    const result: FamilyResult = { feature: input.feature, models, evaluations };
    const resultKey = keys.trainResult(input.feature);
    await store.put(resultKey, JSON.stringify(result, null, 2));
    return { result: { runId: input.runId, feature: input.feature, resultKey } };
  });
}
