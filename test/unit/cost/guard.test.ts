// The run guard Prepare applies and `textshift plan` shows: the shard count and the planned cost against their
// limits (the deployment's maxRunCostUsd, or the experiment's budgetUsd within maxRunCostCeilingUsd).
import { describe, expect, it } from 'vitest';
import { parseExperiment } from '../../../src/config/experiment.js';
import { checkRun, enforceRunCheck, runCheckText, type RunCheck } from '../../../src/cost/guard.js';
import { planExperiment, type FileProfile } from '../../../src/cost/plan.js';
import { bundledPriceTable } from '../../../src/cost/prices.js';
import { BudgetExceededError, ConfigError } from '../../../src/errors/index.js';
import { DATASET_A, contextDeployment } from '../../support/plan-fixtures.js';

/** One dataset "a" (a file split 80/20 into train/val, and a test file) and one USE family. */
const experiment = (extra: object = {}, shardSize = 2000) =>
  parseExperiment(
    JSON.stringify({
      name: 'guarded',
      datasets: {
        a: DATASET_A,
      },
      features: { use: { kind: 'use', shardSize } },
      stages: [{ name: '1', dataset: 'a' }],
      evaluation: { datasets: ['a'] },
      ...extra,
    }),
    'experiments/guarded.json',
  );
const deployment = contextDeployment;
const planOf = (exp: ReturnType<typeof experiment>, rows: number, dep = deployment()) =>
  planExperiment(exp, async (): Promise<FileProfile> => ({ rows, meanChars: 420 }), bundledPriceTable(), { deployment: dep });

describe('run guard (shards and cost against their limits)', () => {
  it("passes a run within cdk.json's default limit and says so", async () => {
    const exp = experiment();
    const plan = await planOf(exp, 1000);
    const check = checkRun(plan, exp, deployment().budget, 'experiments/guarded.json');
    expect(check.refusals).toEqual([]);
    expect(check.cost).toEqual({ estimateUsd: plan.cost.total, limitUsd: 25, limitFrom: 'maxRunCostUsd', ceilingUsd: 250 });
    // 800 train + 200 val + 1000 test rows in shards of 2000: one shard each.
    expect(check.shards).toEqual({ planned: 3, max: 100_000, byFamily: { use: 3 } });
    expect(() => enforceRunCheck(check)).not.toThrow();
    // Every stage limit is checked, each within, and shown under "Limits:" in stage order.
    expect(check.limits.map((l) => [l.name, l.within])).toEqual(
      ['prepare', 'shard', 'train', 'memory', 'objects', 'archive', 'report'].map((name) => [name, true]),
    );
    const text = runCheckText(check);
    expect(text.split('\n').slice(1, 10).map((l) => l.slice(2, 9).trim())).toEqual(['shards', 'prepare', 'shard', 'train', 'memory', 'objects', 'archive', 'report', 'cost']);
    expect(text).toContain('  train   longest job 30.8s (use), limit 240 min (trainerTimeoutMinutes in cdk.json; a timed-out job is not retried)\n');
    expect(text).toContain('Within limits: Prepare runs this experiment.');
  });

  it('refuses an estimate above maxRunCostUsd, naming the estimate, the limit and how to raise it', async () => {
    const exp = experiment();
    const dep = deployment({ maxRunCostUsd: 0.001 });
    const plan = await planOf(exp, 1000, dep);
    expect(plan.cost.total).toBeGreaterThan(0.001);
    const check = checkRun(plan, exp, dep.budget, 'experiments/guarded.json');
    expect(check.refusals).toHaveLength(1);
    const [refusal] = check.refusals;
    expect(refusal).toBeInstanceOf(BudgetExceededError);
    expect(refusal!.retryable).toBe(false);
    const estimate = `$${plan.cost.total.toFixed(4)}`;
    expect(refusal!.message).toBe(
      `experiments/guarded.json: the run's estimated cost ${estimate} is above its limit $0.001 (maxRunCostUsd in cdk.json). ` +
        'To run it, set "budgetUsd" in the experiment (at most $250, this deployment\'s maxRunCostCeilingUsd), or raise ' +
        'maxRunCostUsd in cdk.json (cdk deploy -c maxRunCostUsd=...); textshift plan shows the estimate line by line',
    );
    expect(() => enforceRunCheck(check)).toThrow(refusal!);
    expect(runCheckText(check)).toContain(`cost    estimate ${estimate}, limit $0.001 (maxRunCostUsd in cdk.json; an experiment may set budgetUsd up to $250)`);
    expect(runCheckText(check)).toContain('Prepare would refuse this run:');
  });

  it("budgetUsd replaces the deployment's limit, up to the ceiling; above the ceiling the run is refused whatever it costs", async () => {
    const dep = deployment({ maxRunCostUsd: 0.001, maxRunCostCeilingUsd: 100 });
    const raised = experiment({ budgetUsd: 50 });
    const plan = await planOf(raised, 1000, dep);
    const ok = checkRun(plan, raised, dep.budget, 'experiments/guarded.json');
    expect(ok.refusals).toEqual([]);
    expect(ok.cost).toMatchObject({ limitUsd: 50, limitFrom: 'budgetUsd', ceilingUsd: 100 });

    // A budget below the estimate is the run's own limit: refused, and the message says to raise budgetUsd.
    const tight = experiment({ budgetUsd: 0.0001 });
    const [low] = checkRun(plan, tight, dep.budget, 'experiments/guarded.json').refusals;
    expect(low).toBeInstanceOf(BudgetExceededError);
    expect(low!.message).toMatch(/is above its limit \$0\.0001 \(budgetUsd in the experiment\)\. To run it, raise budgetUsd \(at most \$100, /);

    const greedy = experiment({ budgetUsd: 500 });
    const refused = checkRun(plan, greedy, dep.budget, 'experiments/guarded.json');
    expect(refused.refusals.map((r) => [r.name, r.message])).toEqual([
      [
        'BudgetExceededError',
        "experiments/guarded.json: budgetUsd $500 is above this deployment's ceiling $100 (maxRunCostCeilingUsd in cdk.json); " +
          'lower budgetUsd, or raise the ceiling (cdk deploy -c maxRunCostCeilingUsd=...)',
      ],
    ]);
  });

  it('refuses a run planning more featurize shards than a run may, naming the count, the limit and the families', async () => {
    // 1,000,000-row files in shards of 10: train 80,000 + val 20,000 + test 100,000 = 200,000 shards.
    const exp = experiment({}, 10);
    const plan = await planOf(exp, 1_000_000);
    const check = checkRun(plan, exp, { maxRunCostUsd: 1e9, maxRunCostCeilingUsd: 1e9 }, 'experiments/guarded.json');
    expect(check.shards.planned).toBe(200_000);
    expect(check.refusals).toHaveLength(1);
    expect(check.refusals[0]).toBeInstanceOf(ConfigError);
    expect(check.refusals[0]!.message).toBe(
      'experiments/guarded.json: the run plans 200,000 featurize shards (use 200,000), more than the 100,000 a run may plan; ' +
        'raise features.<family>.shardSize (at most 100000) or subsample the data',
    );
    expect(runCheckText(check)).toContain('shards  200,000 planned, at most 100,000 per run');
  });
});

// The limits each stage runs under, checked before any compute (issue 20, findings 3a and 4): the Featurize timeout
// per shard, the training job's time limit (a timed-out attempt is not retried) and memory, S3's multipart limits and
// the Report function's timeout and memory for checkpoints.zip.
describe('run guard (stage limits: time, memory, S3 multipart)', () => {
  const IMDB_LIKE = { rows: 40_000, meanChars: 1309.4 };
  const plain = (features: object, extra: object = {}) =>
    parseExperiment(
      JSON.stringify({ name: 'guarded', datasets: { a: DATASET_A }, features, stages: [{ name: '1', dataset: 'a' }], evaluation: { datasets: ['a'] }, ...extra }),
      'experiments/guarded.json',
    );
  /** The plan and check of `exp` on file "a" of `full` rows (split 80/20) and a test file of `test` rows. */
  const checked = async (exp: ReturnType<typeof plain>, full: FileProfile, test: FileProfile = { rows: 10_000, meanChars: full.meanChars }, dep = deployment()) => {
    const plan = await planExperiment(exp, async (_d, part) => (part === 'full' ? full : test), bundledPriceTable(), { deployment: dep });
    return { plan, check: checkRun(plan, exp, dep.budget, 'experiments/guarded.json') };
  };
  const over = (check: RunCheck) => check.limits.filter((l) => !l.within).map((l) => l.name);

  it('refuses an explicit shardSize whose shard plans past the Featurize timeout (5,739 s of 900 s), naming a shardSize that fits', async () => {
    // bert-base-sized (an unknown model), 512 tokens, 16,000-row shards of 312-token texts: 16,000 × 0.358 s + 8 s.
    const { check } = await checked(plain({ bert: { kind: 'bert', model: 'my-bert', maxLength: 512, shardSize: 16_000 } }), IMDB_LIKE);
    expect(over(check)).toEqual(['shard']);
    expect(check.refusals.map((r) => [r.name, r.message])).toEqual([
      [
        'ConfigError',
        'experiments/guarded.json: a featurize shard of bert on a/train plans at 5,739 s (16,000 rows at 0.358 s each, plus 8 s to start), ' +
          "above the Featurize function's timeout of 900 s (featurizeTimeoutSeconds in cdk.json; Lambda allows at most 900 s). Set shardSize of " +
          'bert to at most 815 (a shard in a third of the timeout, as the planner sizes them), or remove it to let the planner size shards',
      ],
    ]);
    expect(() => enforceRunCheck(check)).toThrow(check.refusals[0]!);
    const text = runCheckText(check);
    expect(text).toContain('  shard   longest 5,739 s (bert a/train), limit 900 s (featurizeTimeoutSeconds in cdk.json): over\n');
    expect(text).toContain('Prepare would refuse this run:');

    // The suggested size fits; without shardSize the planner's own size fits too (726 rows: 268 s).
    const fixed = await checked(plain({ bert: { kind: 'bert', model: 'my-bert', maxLength: 512, shardSize: 815 } }), IMDB_LIKE);
    expect(fixed.check.refusals).toEqual([]);
    const auto = await checked(plain({ bert: { kind: 'bert', model: 'my-bert', maxLength: 512 } }), IMDB_LIKE);
    expect(auto.check.refusals).toEqual([]);
    expect(auto.plan.rowsPerShard.bert).toBe(726);
    expect(Math.max(...auto.plan.parts.map((p) => p.shardSeconds))).toBeCloseTo(268.0, 0);
    expect(runCheckText(auto.check)).toContain('  shard   longest 268 s (bert a/train), limit 900 s (featurizeTimeoutSeconds in cdk.json)\n');
  });

  it('the planner-sized shards of every encoder fit the Featurize timeout on the default deployment, short texts and long', async () => {
    for (const meanChars of [40, 1309.4, 5000]) {
      for (const features of [{ bow: { kind: 'bow', fitOn: { dataset: 'a', split: 'train' } } }, { use: { kind: 'use' } }, { bert: { kind: 'bert', model: 'my-bert', maxLength: 512 } }]) {
        const { plan, check } = await checked(plain(features), { rows: 40_000, meanChars });
        expect(check.limits.find((l) => l.name === 'shard')!.within, `${JSON.stringify(features)} at ${meanChars} chars`).toBe(true);
        expect(Math.max(...plan.parts.map((p) => p.shardSeconds))).toBeLessThanOrEqual(900);
      }
    }
  });

  it('refuses a training job planned at 31 h when a job may run 4 h: retries do not add time to a job that timed out', async () => {
    // 576,000 training rows × 1000 epochs through a 30 M-parameter MLP.
    const exp = plain({ use: { kind: 'use' } }, { model: { hidden: Array(8).fill(2048) }, training: { epochs: 1000, checkpointEvery: 1000 } });
    const { plan, check } = await checked(exp, { rows: 720_000, meanChars: 420 }, { rows: 1000, meanChars: 420 });
    expect(plan.jobs[0]!.runningSeconds / 3600).toBeCloseTo(31, 0);
    expect(over(check)).toEqual(['train']);
    expect(check.refusals.map((r) => r.message)).toEqual([
      'experiments/guarded.json: the training job of use plans to run 30h 56m 56s (30,429,186 parameters, 1 stage(s) × 1000 epochs), above a ' +
        "job's time limit of 240 min (trainerTimeoutMinutes in cdk.json). Its 3 attempts retry exit 75 and Spot reclaims, not a timeout, so " +
        'retries add no time: raise trainerTimeoutMinutes to at least 1,857, or train fewer epochs or a smaller model',
    ]);
    expect(runCheckText(check)).toContain(
      '  train   longest job 30h 56m 56s (use), limit 240 min (trainerTimeoutMinutes in cdk.json; a timed-out job is not retried): over\n',
    );
    // With a 32 h job limit it runs (and stays within its cost limit).
    const longer = await checked(exp, { rows: 720_000, meanChars: 420 }, { rows: 1000, meanChars: 420 }, deployment({ trainerTimeoutMinutes: 1920 }));
    expect(longer.check.refusals).toEqual([]);
  });

  it('refuses the 439 M-parameter plan whose 58.9 GiB checkpoints.zip cannot stream within the Report timeout, before any compute', async () => {
    // maxFeatures 200,000 and 8 × 2048 hidden: 438,980,610 parameters; 22 epochs checkpointed every 2: 12 checkpoints
    // of weights and Adam moments (12 bytes a parameter) = 63.2 GB. In 5 MiB parts it would stop at 10,000 parts (48.8 GiB).
    const exp = plain(
      { bow: { kind: 'bow', maxFeatures: 200_000, fitOn: { dataset: 'a', split: 'train' } } },
      { model: { hidden: Array(8).fill(2048) }, training: { epochs: 22, checkpointEvery: 2 } },
    );
    const { plan, check } = await checked(exp, IMDB_LIKE);
    expect(plan.jobs[0]!.parameters).toBe(438_980_610);
    expect(plan.archive.bytes).toBe(12 * 12 * 438_980_610 + 39 * 250);
    expect(over(check)).toEqual(['report']);
    expect(check.refusals.map((r) => r.message)).toEqual([
      'experiments/guarded.json: Report plans at 1,284 s: it streams checkpoints.zip (58.9 GiB, 39 files) in 1,264 s at an assumed 50 MB/s, ' +
        "plus 20 s for the report, above the Report function's timeout of 900 s (reportTimeoutSeconds in cdk.json; Lambda allows at most 900 s). " +
        'To run it, checkpoint less often (training.checkpointEvery, now 2), train fewer epochs, or train a smaller model (the largest has ' +
        '438,980,610 parameters)',
    ]);
    const text = runCheckText(check);
    // The part size comes from the archive's size: 7 MiB parts fit it in 10,000.
    expect(text).toContain(
      '  archive checkpoints.zip 58.9 GiB in 7 MiB parts (S3: at most 10,000); Report holds 291 MiB, limit 3,008 MB (reportMemoryMb in cdk.json)\n',
    );
    expect(text).toContain('  report  1,284 s planned (checkpoints.zip at 50 MB/s), limit 900 s (reportTimeoutSeconds in cdk.json): over\n');
    expect(text).toContain("  objects largest 3.3 GiB (bow's optimizer.safetensors), limit 48.8 GiB (10,000 parts of 5 MiB: S3 multipart upload limits)\n");

    // Checkpointing every 11 epochs: 3 checkpoints, 14.7 GiB, 336 s in Report.
    const fewer = await checked(plain(exp.features, { model: exp.model, training: { epochs: 22, checkpointEvery: 11 } }), IMDB_LIKE);
    expect(fewer.check.refusals).toEqual([]);
  });

  it("refuses an archive over S3's largest object (5 TiB), whatever the Report function's limits", async () => {
    // 1001 checkpoints of 439 M parameters in each of 2 stages: 10.5 TB.
    const exp = parseExperiment(
      JSON.stringify({
        name: 'guarded',
        datasets: { a: DATASET_A },
        features: { bow: { kind: 'bow', maxFeatures: 200_000, fitOn: { dataset: 'a', split: 'train' } } },
        model: { hidden: Array(8).fill(2048) },
        training: { epochs: 1000, checkpointEvery: 1, batchSize: 8192 },
        stages: [{ name: '1', dataset: 'a' }, { name: '2', dataset: 'a', from: '1' }],
        evaluation: { datasets: ['a'] },
      }),
      'experiments/guarded.json',
    );
    const { check } = await checked(exp, { rows: 100, meanChars: 100 });
    const messages = check.refusals.map((r) => r.message);
    expect(messages).toContain(
      "experiments/guarded.json: checkpoints.zip plans at 9.6 TiB, above S3's largest object of 5 TiB (Amazon S3 multipart upload limits); " +
        'checkpoint less often (training.checkpointEvery, now 1), train fewer epochs, or train a smaller model',
    );
    expect(over(check)).toEqual(['archive', 'report']);
  });

  it("refuses a training job whose features and model outgrow the job's memory, naming each part", async () => {
    // 4,000,000 train + 1,000,000 val + 5,000,000 test rows of 512 float32: 19.1 GiB.
    const { check } = await checked(plain({ use: { kind: 'use' } }), { rows: 5_000_000, meanChars: 100 }, { rows: 5_000_000, meanChars: 100 });
    expect(over(check)).toEqual(['memory']);
    expect(check.refusals.map((r) => r.message)).toEqual([
      'experiments/guarded.json: the training job of use plans to hold 20.1 GiB (features of its largest stage 19.1 GiB, model and Adam state ' +
        "6.6 MiB, runtime 1 GiB), above the job's memory of 14,336 MiB (trainerMemoryMiB in cdk.json). Raise trainerMemoryMiB (on instance " +
        'types that have it), subsample the data, or train a smaller model',
    ]);
  });

  it("refuses Prepare's own time over its timeout, and an archive whose upload parts outgrow Report's memory", async () => {
    const slow = await checked(plain({ use: { kind: 'use' } }), { rows: 1_000_000, meanChars: 420 }, undefined, deployment({ prepareTimeoutSeconds: 60 }));
    expect(over(slow.check)).toEqual(['prepare']);
    expect(slow.check.refusals.map((r) => r.message)).toEqual([
      "experiments/guarded.json: Prepare plans at 87 s to read, split and store the datasets, above the Prepare function's timeout of 60 s " +
        '(prepareTimeoutSeconds in cdk.json; Lambda allows at most 900 s); raise prepareTimeoutSeconds (at most 900), or read less data',
    ]);
    const small = await checked(plain({ use: { kind: 'use' } }), { rows: 1000, meanChars: 420 }, undefined, deployment({ reportMemoryMb: 256 }));
    expect(over(small.check)).toEqual(['archive']);
    expect(small.check.refusals.map((r) => r.message)).toEqual([
      'experiments/guarded.json: checkpoints.zip plans at 29.9 MiB, uploaded in parts of 5 MiB (at most 10,000: Amazon S3 multipart upload ' +
        "limits), of which Report holds 5 at once besides its runtime: 281 MiB, above the Report function's memory of 256 MB (reportMemoryMb in " +
        'cdk.json; Lambda allows at most 10,240 MB). Raise reportMemoryMb, or checkpoint less often (training.checkpointEvery, now 2), train ' +
        'fewer epochs, or train a smaller model',
    ]);
  });
});
