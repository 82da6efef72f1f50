import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { costOptionsOf, deployedPlanDeploymentOf, planDeploymentOf, readConfig, readConfigFile, spendCapsOf } from '../../../src/config/deployment.js';
import { ConfigError } from '../../../src/errors/index.js';
import { repositoryDeployment } from '../../../src/workflow/local-runner.js';
import { CDK_CONTEXT } from '../../support/cdk-template.js';

const read = (overrides: Record<string, unknown> = {}) => readConfig((key) => ({ ...CDK_CONTEXT, ...overrides })[key]);

describe('deployment context', () => {
  it('cdk.json holds a complete, valid default deployment', () => {
    const config = read();
    expect(config).toMatchObject({
      stackName: 'Textshift',
      prefix: 'textshift',
      cacheExpiryDays: 30,
      featurizeConcurrency: 10,
      trainerCompute: 'gpu',
      gpuInstanceTypes: ['g4dn.xlarge'],
      trainerSpot: false,
    });
    expect(config.vpcId).toBeUndefined();
    expect(config.trainerImage).toBeUndefined();
    expect(config.functions.featurize).toEqual({ memoryMb: 10240, timeoutSeconds: 900 });
    expect(config.functions.markFailed).toEqual({ memoryMb: 256, timeoutSeconds: 60 });
  });

  it('accepts the strings `cdk deploy -c key=value` passes', () => {
    const config = read({
      trainerSpot: 'true',
      featurizeConcurrency: '25',
      gpuInstanceTypes: 'g5.xlarge, g5.2xlarge',
      vpcId: 'vpc-0abc123',
      prepareMemoryMb: '4096',
    });
    expect(config.trainerSpot).toBe(true);
    expect(config.featurizeConcurrency).toBe(25);
    expect(config.gpuInstanceTypes).toEqual(['g5.xlarge', 'g5.2xlarge']);
    expect(config.vpcId).toBe('vpc-0abc123');
    expect(config.functions.prepare.memoryMb).toBe(4096);
  });

  it('treats an empty value as unset, so optional keys can be cleared from the command line', () => {
    const config = read({ vpcId: '', trainerImage: '' });
    expect(config.vpcId).toBeUndefined();
    expect(config.trainerImage).toBeUndefined();
  });

  it('names every bad key and what it expected', () => {
    const attempt = () =>
      read({
        trainerCompute: 'tpu',
        featurizeMemoryMb: 20000,
        logRetentionDays: 10,
        trainerSpot: 'yes',
        trainerImage: 'my-repo',
      });
    expect(attempt).toThrow(/invalid deployment context \(cdk\.json or -c\)/);
    expect(attempt).toThrow(/context "trainerCompute": .*"gpu".*"cpu"/);
    expect(attempt).toThrow(/context "featurizeMemoryMb": .*10240/);
    expect(attempt).toThrow(/context "logRetentionDays": expected one of 1, 3, 5, 7, 14, 30/);
    expect(attempt).toThrow(/context "trainerSpot"/);
    expect(attempt).toThrow(/context "trainerImage": expected "<ecr repository name>:<tag>"/);
  });

  it('the per-run cost limits: 25 USD by default, up to a 250 USD ceiling; the limit may not exceed the ceiling', () => {
    expect(read()).toMatchObject({ maxRunCostUsd: 25, maxRunCostCeilingUsd: 250 });
    expect(read({ maxRunCostUsd: '100', maxRunCostCeilingUsd: '1000', maxDailyCostUsd: '1000' })).toMatchObject({ maxRunCostUsd: 100, maxRunCostCeilingUsd: 1000 });
    expect(() => read({ maxRunCostUsd: 300 })).toThrow(/context "maxRunCostUsd": expected at most maxRunCostCeilingUsd \(250\), got 300/);
    expect(() => read({ maxRunCostUsd: 0 })).toThrow(/context "maxRunCostUsd": Too small/);
    expect(() => read({ maxRunCostCeilingUsd: 'lots' })).toThrow(/context "maxRunCostCeilingUsd": /);
  });

  it('the caps across runs: 4 runs at once, 500 USD of planned spend a day, 48 h a run, no alarm e-mail by default; each bounded', () => {
    expect(read()).toMatchObject({ maxConcurrentRuns: 4, maxDailyCostUsd: 500, maxRunHours: 48 });
    expect(read().alarmEmail).toBeUndefined();
    expect(read({ maxConcurrentRuns: '2', maxDailyCostUsd: '250', maxRunHours: '24', alarmEmail: 'ops@example.com' })).toMatchObject({
      maxConcurrentRuns: 2,
      maxDailyCostUsd: 250,
      maxRunHours: 24,
      alarmEmail: 'ops@example.com',
    });
    expect(spendCapsOf(read({ maxConcurrentRuns: '2' }))).toEqual({ maxConcurrentRuns: 2, maxDailyCostUsd: 500, maxRunHours: 48 });
    // A run at the ceiling must fit in a day's budget, or an experiment's allowed budgetUsd could never run.
    expect(() => read({ maxDailyCostUsd: 100 })).toThrow(
      /context "maxDailyCostUsd": expected at least maxRunCostCeilingUsd \(250\), so a run at the ceiling fits in a day, got 100; lower maxRunCostCeilingUsd too/,
    );
    expect(read({ maxDailyCostUsd: 100, maxRunCostCeilingUsd: 100 }).maxDailyCostUsd).toBe(100);
    expect(() => read({ maxConcurrentRuns: 0 })).toThrow(/context "maxConcurrentRuns": Too small/);
    expect(() => read({ maxConcurrentRuns: 101 })).toThrow(/context "maxConcurrentRuns": .*100/);
    expect(() => read({ maxRunHours: 8761 })).toThrow(/context "maxRunHours": .*8760/);
    expect(() => read({ alarmEmail: 'ops' })).toThrow(/context "alarmEmail": expected an e-mail address/);
    // Cleared from the command line, as any optional key.
    expect(read({ alarmEmail: '' }).alarmEmail).toBeUndefined();
  });

  it('time limits and training concurrency: defaults, and the bounds AWS documents', () => {
    expect(read()).toMatchObject({ trainerRunnableTimeoutMinutes: 60, trainConcurrency: 4 });
    expect(read({ trainerRunnableTimeoutMinutes: '30', trainConcurrency: '2', featurizeConcurrency: '1000' })).toMatchObject({
      trainerRunnableTimeoutMinutes: 30,
      trainConcurrency: 2,
      featurizeConcurrency: 1000,
    });
    // Batch's JobStateTimeLimitAction takes 600 to 86,400 seconds; an Inline Map runs at most 40 iterations at once.
    expect(() => read({ trainerRunnableTimeoutMinutes: 5 })).toThrow(/context "trainerRunnableTimeoutMinutes": .*10/);
    expect(() => read({ trainerRunnableTimeoutMinutes: 1441 })).toThrow(/context "trainerRunnableTimeoutMinutes": .*1440/);
    expect(() => read({ trainConcurrency: 41 })).toThrow(/context "trainConcurrency": .*40/);
    expect(() => read({ featurizeConcurrency: 1001 })).toThrow(/context "featurizeConcurrency": .*1000/);
  });

  it('reports a missing key (no cdk.json context) by name', () => {
    expect(() => readConfig(() => undefined)).toThrow(/context "stackName"/);
  });

  it('rejects an empty instance type list, which would leave Batch nothing to launch', () => {
    expect(() => read({ gpuInstanceTypes: [] })).toThrow(/context "gpuInstanceTypes": expected at least one entry/);
    expect(() => read({ cpuInstanceTypes: 'm6i.xlarge,' })).toThrow(/context "cpuInstanceTypes\.1": expected a non-empty name/);
  });
});

describe('cost options of a deployment', () => {
  it('the default deployment: its first GPU type on demand, and every function\'s configured memory', () => {
    expect(costOptionsOf(read())).toEqual({
      batchInstanceType: 'g4dn.xlarge',
      batchMarket: 'on-demand',
      lambdaMemoryMb: { prepare: 3008, featurize: 10240, report: 3008, markFailed: 256 },
    });
    expect(costOptionsOf(read({ trainerCompute: 'cpu', cpuInstanceTypes: 'c6i.2xlarge,m6i.xlarge', trainerSpot: true, reportMemoryMb: 1024 }))).toEqual({
      batchInstanceType: 'c6i.2xlarge',
      batchMarket: 'spot',
      lambdaMemoryMb: { prepare: 3008, featurize: 10240, report: 1024, markFailed: 256 },
    });
  });

  it('what a plan and the cost guard assume: the pricing choices, the featurize concurrency, the time and memory limits, and the cost limits', () => {
    const limits = { featurizeTimeoutSeconds: 300, prepareTimeoutSeconds: 600, reportTimeoutSeconds: 700, trainerTimeoutMinutes: 60, trainerMemoryMiB: 8192 };
    expect(planDeploymentOf(read({ featurizeConcurrency: 4, maxRunCostUsd: 5, ...limits }))).toEqual({
      pricing: costOptionsOf(read()),
      featurizeConcurrency: 4,
      ...limits,
      budget: { maxRunCostUsd: 5, maxRunCostCeilingUsd: 250 },
    });
  });

  it('the stack tells Prepare the caps across runs as well; a local run and textshift plan leave them out', () => {
    const config = read({ maxConcurrentRuns: '3' });
    expect(planDeploymentOf(config).spend).toBeUndefined();
    expect(deployedPlanDeploymentOf(config)).toEqual({ ...planDeploymentOf(config), spend: { maxConcurrentRuns: 3, maxDailyCostUsd: 500, maxRunHours: 48 } });
  });

  it('a local run estimates with the options of the repository\'s cdk.json, read by the same code as the stack', async () => {
    expect(planDeploymentOf(await repositoryDeployment()).pricing).toEqual(costOptionsOf(read()));
  });

  it('readConfigFile: undefined without the file; a ConfigError for a file that is not JSON or not a valid deployment', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'textshift-cdk-json-'));
    try {
      expect(await readConfigFile(path.join(dir, 'cdk.json'))).toBeUndefined();
      writeFileSync(path.join(dir, 'broken.json'), '{"context": {');
      await expect(readConfigFile(path.join(dir, 'broken.json'))).rejects.toThrow(ConfigError);
      await expect(readConfigFile(path.join(dir, 'broken.json'))).rejects.toThrow(/broken\.json is not valid JSON: /);
      writeFileSync(path.join(dir, 'invalid.json'), JSON.stringify({ context: { ...CDK_CONTEXT, trainerCompute: 'tpu' } }));
      await expect(readConfigFile(path.join(dir, 'invalid.json'))).rejects.toThrow(/context "trainerCompute"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
