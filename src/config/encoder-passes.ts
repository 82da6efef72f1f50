import { familyCap, neededParts, type Experiment, type FeatureConfig } from './experiment.js';

/**
 * One encoder pass of a run: the feature families whose features come from the same encoding of the same texts. A
 * BERT-family pass computes every pooling of each text at once, so families that differ only in `pooling` share it:
 * its texts are encoded once, in one shard plan, and each family takes its pooling from the shared shards. Every other
 * family is a pass of its own.
 */
export interface EncoderPass {
  /** The pass's first family: names its shards (`runs/<id>/shards/<name>/...`) and configures the encoder. */
  name: string;
  /** The families fed by the pass, in experiment order. */
  families: string[];
  spec: FeatureConfig;
}

/**
 * The encoder passes of a run, in experiment order. BERT-family families share a pass when they use the same model,
 * truncation, batch and shard size and, in this run's mode, the same rows of every part (their subsample caps), so
 * that their shards hold the same texts.
 */
export function encoderPasses(exp: Experiment, mode: { quick: boolean; full: boolean }): EncoderPass[] {
  const byKey = new Map<string, EncoderPass>();
  for (const [family, spec] of Object.entries(exp.features)) {
    const key = spec.kind === 'bert' ? sharedPassKey(exp, family, spec, mode) : `family:${family}`;
    const pass = byKey.get(key);
    if (pass) pass.families.push(family);
    else byKey.set(key, { name: family, families: [family], spec });
  }
  return [...byKey.values()];
}

/** What a BERT-family family's shards depend on: everything but its pooling. */
function sharedPassKey(exp: Experiment, family: string, spec: FeatureConfig & { kind: 'bert' }, mode: { quick: boolean; full: boolean }): string {
  const caps = neededParts(exp).map(([dataset, part]) => familyCap(exp, family, dataset, part, mode) ?? null);
  return JSON.stringify(['bert', spec.model, spec.maxLength, spec.batchSize, spec.shardSize, caps]);
}

/** A pass as the plan and the manifest show it: its family, or its families joined by "+". */
export function passLabel(pass: Pick<EncoderPass, 'families'>): string {
  return pass.families.join('+');
}
