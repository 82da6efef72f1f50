/**
 * The object layout (docs/guide.md, "What a run does"), identical in a local folder and in S3: every key a run, the feature cache and the
 * model store use, and the parsers that read a key back. Every reader and writer of run artifacts takes its keys
 * from here; the IAM grants in cdk/ are built from the same prefixes.
 */
import { DATASETS_FOLDER } from '../store/locations.js';
import { InvalidInputError } from '../errors/index.js';

/** Top-level prefixes of the store (and of the bucket). */
export const PREFIXES = {
  /** Uploading `experiments/<name>.json` starts a run. */
  experiments: 'experiments/',
  /** Raw inputs referenced by experiments (the data root on AWS; the store's default data location). */
  datasets: `${DATASETS_FOLDER}/`,
  /** BERT-family model folders (HF/optimum layout). */
  models: 'models/',
  runs: 'runs/',
  /** Content-addressed features shared by runs; recomputable, so it may expire. */
  cache: 'cache/',
  /** The deployment's spend across runs: which runs hold a slot, and what each day's admitted runs planned to cost. */
  spend: 'spend/',
} as const;

/** The spend ledger (src/cost/spend-ledger.ts): one object, so one conditional write admits a run against both caps. */
export const SPEND_LEDGER_KEY = `${PREFIXES.spend}ledger.json`;

/**
 * The characters an experiment file name may use. Its key, and on AWS the run id made of it (`<name up to its first
 * dot>-<digest>`, cdk/constructs/workflow.ts), must be key segments (validateKey); and an upload's key can reach the
 * state machine URL-encoded (LocalStack sends it so, as S3's own notifications do), which keeps exactly these as they are.
 */
export const EXPERIMENT_NAME_CHARACTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-';

/** The refusal of an experiment file name with other characters, naming the file (or key), the characters allowed and `got`. */
export function experimentNameRule(file: string, got = ''): string {
  return `${file}: an experiment file name may only use letters, digits and . _ -${got}, since the run and every key it writes are named after it`;
}

/** Key of an experiment file by its file name; a name with other characters than EXPERIMENT_NAME_CHARACTERS is refused. */
export function experimentKey(fileName: string): string {
  const others = [...new Set([...fileName].filter((c) => !EXPERIMENT_NAME_CHARACTERS.includes(c)))];
  if (others.length > 0 || /^\.*$/.test(fileName)) {
    const got = others.length > 0 ? ` (got ${others.map((c) => JSON.stringify(c)).join(', ')})` : '';
    throw new InvalidInputError(`${experimentNameRule(`experiment file "${fileName}"`, got)}; rename the file`);
  }
  return `${PREFIXES.experiments}${fileName}`;
}

/** Keys of one run's artifacts. */
export function runKeys(runId: string) {
  const root = `${PREFIXES.runs}${runId}`;
  return {
    root,
    manifest: `${root}/manifest.json`,
    /** Prepare's stored plan: a prepared run returns it instead of preparing again. */
    plan: `${root}/prepare.json`,
    /** The run's lease (src/run/run-lock.ts): its holder, fencing token and renewals; released, not deleted, when the run ends. */
    lock: `${root}/lock.json`,
    /** The lease of the one training job of a feature family (src/workflow/job-lease.ts). */
    jobLease: (feature: string) => `${root}/jobs/train-${feature}.json`,
    split: (dataset: string, split: string) => `${root}/splits/${dataset}/${split}.jsonl.gz`,
    vocabulary: (feature: string) => `${root}/features/${feature}/vocabulary.json`,
    featureIndex: (feature: string) => `${root}/features/${feature}/index.json`,
    shardsPrefix: `${root}/shards/`,
    /** The shard plan: a JSON array of every featurize shard key, which the Featurize Distributed Map reads (ItemReader). */
    shardPlan: `${root}/shards.json`,
    /** Where the Featurize Distributed Map writes its child executions' inputs and outputs (ResultWriter). */
    shardMapResultsPrefix: `${root}/featurize-map`,
    shard: (feature: string, dataset: string, part: string, index: number) =>
      `${root}/shards/${feature}/${dataset}/${part}/${String(index).padStart(5, '0')}.json`,
    /** What Prepare stored of one part's shard tasks, a batch at a time: a retried Prepare skips those already stored. */
    shardTaskBatches: (feature: string, dataset: string, part: string) => `${root}/prepare/shard-tasks/${feature}/${dataset}/${part}/`,
    modelsPrefix: `${root}/models/`,
    modelDir: (model: string) => `${root}/models/${model}`,
    checkpoint: (model: string, epoch: number) => `${root}/models/${model}/epoch_${epoch}`,
    best: (model: string) => `${root}/models/${model}/best`,
    trainResult: (feature: string) => `${root}/models/${feature}.result.json`,
    logs: (model: string) => `${root}/logs/${model}`,
    report: (file: string) => `${root}/report/${file}`,
    checkpointsZip: `${root}/checkpoints.zip`,
  };
}

/** The parts of a featurize shard key `runs/<runId>/shards/<feature>/<dataset>/<part>/<index>.json`. */
export interface ShardKeyParts {
  runId: string;
  feature: string;
  dataset: string;
  part: string;
  index: number;
}

/** Reads a shard key back into its parts; undefined when the key is not a shard key. */
export function parseShardKey(key: string): ShardKeyParts | undefined {
  const m = /^runs\/([^/]+)\/shards\/([^/]+)\/([^/]+)\/([^/]+)\/(\d+)\.json$/.exec(key);
  if (!m) return undefined;
  return { runId: m[1]!, feature: m[2]!, dataset: m[3]!, part: m[4]!, index: Number(m[5]) };
}

/** True when `key` is a featurize shard of run `runId`. */
export function isShardOf(key: string, runId: string): boolean {
  return parseShardKey(key)?.runId === runId;
}

/** Key of a featurize shard's result object, beside its task under `featurized/` instead of `shards/`. */
export function shardResultKey(shardKey: string): string {
  return shardKey.replace('/shards/', '/featurized/');
}

/** Content-addressed feature cache entry (shared by runs and experiments). */
export function featureCacheKey(contentHash: string, ext: 'npy' | 'csr'): string {
  return `${PREFIXES.cache}features/${contentHash}.${ext}`;
}

/** Store prefix of a model folder `models/<name>/`. */
export function modelPrefix(name: string): string {
  return `${PREFIXES.models}${name}/`;
}
