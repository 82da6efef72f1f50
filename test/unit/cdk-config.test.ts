import { describe, expect, it } from 'vitest';
import { readConfig } from '../../cdk/config.js';
import { CDK_CONTEXT } from '../support/cdk-template.js';

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

  it('reports a missing key (no cdk.json context) by name', () => {
    expect(() => readConfig(() => undefined)).toThrow(/context "stackName"/);
  });
});
