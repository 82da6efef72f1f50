import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployedPlanDeploymentOf, planDeploymentOf } from '../../../src/config/deployment.js';
import { repositoryDeployment } from '../../../src/workflow/local-runner.js';
import { SYNTH_TIMEOUT, type Synthesized, resourcesOf, synth } from '../../support/cdk-template.js';

let gpu: Synthesized;
let cpu: Synthesized;
beforeAll(() => {
  gpu = synth();
  // Every non-default trainer option at once: CPU queue, Spot, two instance types from a CLI string, a pre-built image.
  cpu = synth({
    trainerCompute: 'cpu',
    trainerSpot: 'true',
    cpuInstanceTypes: 'c6i.2xlarge, m6i.xlarge',
    trainerImage: 'textshift-trainer:v1',
    maxRunCostUsd: '40',
  });
}, 2 * SYNTH_TIMEOUT);

const only = (s: Synthesized, type: string) => {
  const all = resourcesOf(s.template, type);
  expect(all, type).toHaveLength(1);
  return all[0]![1] as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
};
const readJson = (file: string) => JSON.parse(readFileSync(new URL(`../../../${file}`, import.meta.url), 'utf8'));
/** Docker image assets of the synthesized stack (the asset manifest the CLI publishes from). */
const dockerImages = (s: Synthesized): { source: { directory: string; dockerFile?: string; platform?: string } }[] =>
  Object.values(JSON.parse(readFileSync(path.join(s.outdir, `${s.stack.artifactId}.assets.json`), 'utf8')).dockerImages ?? {});

describe('GPU trainer (default)', () => {
  it('job definition asks for one GPU, passes the job parameters on the command line and requires the GPU', () => {
    const container = only(gpu, 'AWS::Batch::JobDefinition').ContainerProperties;
    expect(container.ResourceRequirements).toEqual(
      expect.arrayContaining([
        { Type: 'GPU', Value: '1' },
        { Type: 'VCPU', Value: '4' },
        { Type: 'MEMORY', Value: '14336' },
      ]),
    );
    expect(container.Command).toEqual(['--run-id', 'Ref::runId', '--feature', 'Ref::feature']);
    expect(container.Environment).toEqual(
      expect.arrayContaining([
        { Name: 'BUCKET', Value: expect.stringMatching(/^ref:StorageData/) },
        { Name: 'TEXTSHIFT_REQUIRE_GPU', Value: '1' },
        { Name: 'AWS_REGION', Value: '{AWS::Region}' },
      ]),
    );
    expect(container.JobRoleArn).toMatch(/^arn:TrainingJobRole/);
  });

  it('job queue: cancels a job that waited RUNNABLE longer than trainerRunnableTimeoutMinutes, for every blocking reason Batch reports', () => {
    const queue = only(gpu, 'AWS::Batch::JobQueue');
    // The reasons the AWS Batch user guide lists for jobStateTimeLimitActions ("Jobs stuck in RUNNABLE"); CDK and
    // Batch accept 600 to 86,400 seconds.
    expect(queue.JobStateTimeLimitActions).toEqual(
      ['CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY', 'MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE', 'MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT'].map((reason) => ({
        Action: 'CANCEL',
        MaxTimeSeconds: 60 * 60,
        Reason: reason,
        State: 'RUNNABLE',
      })),
    );
    const custom = synth({ trainerRunnableTimeoutMinutes: 15 });
    expect((only(custom, 'AWS::Batch::JobQueue').JobStateTimeLimitActions as { MaxTimeSeconds: number }[]).map((a) => a.MaxTimeSeconds)).toEqual([900, 900, 900]);
  }, SYNTH_TIMEOUT);

  it('retries a job only on a transient exit (EX_TEMPFAIL, 75) or a reclaimed Spot host, exits on anything else, and times out', () => {
    const def = only(gpu, 'AWS::Batch::JobDefinition');
    // Batch applies the first entry that matches, so both RETRY entries must come before the catch-all EXIT.
    expect(def.RetryStrategy).toEqual({
      Attempts: 3,
      EvaluateOnExit: [
        { Action: 'RETRY', OnExitCode: '75' },
        { Action: 'RETRY', OnStatusReason: 'Host EC2*' },
        { Action: 'EXIT', OnReason: '*' },
      ],
    });
    expect(def.Timeout).toEqual({ AttemptDurationSeconds: 240 * 60 });
  });

  it('runs on a managed on-demand GPU environment that scales to zero', () => {
    const resources = only(gpu, 'AWS::Batch::ComputeEnvironment').ComputeResources;
    expect(resources).toMatchObject({
      Type: 'EC2',
      MinvCpus: 0,
      MaxvCpus: 16,
      InstanceTypes: ['g4dn.xlarge'],
      Ec2Configuration: [{ ImageType: 'ECS_AL2023_NVIDIA' }],
    });
    expect(only(gpu, 'AWS::Batch::JobQueue')).toMatchObject({
      JobQueueName: 'textshift-trainer-gpu',
      ComputeEnvironmentOrder: [{ Order: 1, ComputeEnvironment: expect.stringMatching(/^arn:TrainingComputeEnvironment/) }],
    });
  });

  it('creates a VPC without NAT gateways, with an S3 gateway endpoint and rejected-traffic flow logs', () => {
    expect(resourcesOf(gpu.template, 'AWS::EC2::NatGateway')).toEqual([]);
    expect(only(gpu, 'AWS::EC2::VPCEndpoint')).toMatchObject({ VpcEndpointType: 'Gateway', ServiceName: 'com.amazonaws.{AWS::Region}.s3' });
    expect(only(gpu, 'AWS::EC2::FlowLog')).toMatchObject({ TrafficType: 'REJECT', ResourceType: 'VPC' });
    const sg = only(gpu, 'AWS::EC2::SecurityGroup');
    expect(sg.SecurityGroupIngress).toBeUndefined();
  });

  it('builds the image from containers/trainer at deploy time, from a build context of only what it needs', () => {
    const images = dockerImages(gpu);
    expect(images).toHaveLength(1);
    expect(images[0]!.source).toMatchObject({ dockerFile: 'containers/trainer/Dockerfile', platform: 'linux/amd64' });
    // Synth only stages the context (no Docker here); check what docker build would receive.
    const context = path.join(gpu.outdir, images[0]!.source.directory);
    expect(readdirSync(context).sort()).toEqual(['containers', 'package-lock.json', 'package.json', 'src']);
    expect(readdirSync(path.join(context, 'containers'))).toEqual(['trainer']);
    expect(readdirSync(path.join(context, 'containers/trainer')).sort()).toEqual(['Dockerfile', 'package-lock.json', 'package.json', 'src']);
  });
});

describe('cost report inputs', () => {
  const costOptions = (s: Synthesized) => {
    const report = resourcesOf(s.template, 'AWS::Lambda::Function').find(([id]) => id.startsWith('ReportFunction'))![1];
    return JSON.parse((report.Environment as { Variables: Record<string, string> }).Variables.TEXTSHIFT_COST_OPTIONS!);
  };

  it('tells the Report Lambda the deployed instance type, market and Lambda memory sizes', () => {
    expect(costOptions(gpu)).toEqual({
      batchInstanceType: 'g4dn.xlarge',
      batchMarket: 'on-demand',
      lambdaMemoryMb: { prepare: 3008, featurize: 10240, report: 3008, markFailed: 256 },
    });
    expect(costOptions(cpu)).toMatchObject({ batchInstanceType: 'c6i.2xlarge', batchMarket: 'spot' });
  });

  it('are the options a local run estimates with (both from cdk.json through src/config/deployment.ts)', async () => {
    expect(costOptions(gpu)).toEqual(planDeploymentOf(await repositoryDeployment()).pricing);
  });

  it("tell Prepare's cost guard what a local run and textshift plan assume: the same prices, concurrency and cost limits", async () => {
    const planDeployment = (s: Synthesized) => {
      const prepare = resourcesOf(s.template, 'AWS::Lambda::Function').find(([id]) => id.startsWith('PrepareFunction'))![1];
      return JSON.parse((prepare.Environment as { Variables: Record<string, string> }).Variables.TEXTSHIFT_PLAN_DEPLOYMENT!);
    };
    // ... and the caps across runs, which only a deployment applies.
    expect(planDeployment(gpu)).toEqual(deployedPlanDeploymentOf(await repositoryDeployment()));
    expect(planDeployment(gpu)).toEqual({ ...planDeploymentOf(await repositoryDeployment()), spend: expect.anything() });
    expect(planDeployment(gpu).budget).toEqual({ maxRunCostUsd: 25, maxRunCostCeilingUsd: 250 });
    expect(planDeployment(cpu)).toMatchObject({ pricing: costOptions(cpu), budget: { maxRunCostUsd: 40, maxRunCostCeilingUsd: 250 } });
  });
});

describe('trainer image definition', () => {
  const dockerfile = readFileSync(new URL('../../../containers/trainer/Dockerfile', import.meta.url), 'utf8');

  it('holds every file and package the entry loads: src/ and its own folder (never the handlers), runtime dependencies only', async () => {
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const options = await extractDepcruiseOptions(path.join(root, '.dependency-cruiser.mjs'));
    // The project excludes node_modules from results; here the packages are the point (still not followed into).
    const { output } = await cruise(['containers/trainer/src/main.ts'], { ...options, baseDir: root, exclude: {} }, {}, { tsConfig: extractTSConfig(path.join(root, 'tsconfig.json')) });
    if (typeof output === 'string') throw new Error(output);
    // What `node containers/trainer/src/main.ts` loads: the modules reachable through value (not type-only) imports.
    const bySource = new Map(output.modules.map((m) => [m.source, m]));
    const loaded = new Set(['containers/trainer/src/main.ts']);
    for (const source of loaded) {
      for (const d of bySource.get(source)?.dependencies ?? []) {
        if (!d.dependencyTypes.includes('type-only') && !d.coreModule) loaded.add(d.resolved);
      }
    }
    const packageOf = (file: string) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1];
    const packages = new Set([...loaded].map(packageOf).filter((p) => p !== undefined));
    const files = [...loaded].filter((f) => packageOf(f) === undefined);
    expect(files.filter((f) => !/^(src|containers\/trainer\/src)\//.test(f))).toEqual([]);
    expect(files).toContain('src/workflow/deployment-context.ts');
    // The image installs the root package's dependencies (--omit=dev) plus the trainer package's own.
    const installed = Object.keys({ ...readJson('package.json').dependencies, ...readJson('containers/trainer/package.json').dependencies });
    expect([...packages].filter((p) => !installed.includes(p))).toEqual([]);
    expect(packages).toContain('zod');
    // The Dockerfile copies exactly those two source folders (and the compiled kernels), nothing of functions/.
    expect(dockerfile).toMatch(/^COPY src \.\/src$/m);
    expect(dockerfile).toMatch(/^COPY containers\/trainer\/src \.\/containers\/trainer\/src$/m);
    expect(dockerfile).not.toMatch(/functions/);
  }, 60_000);

  it('uses the CUDA 11.2 / cuDNN 8 runtime that tfjs-node-gpu 4.22 is built against, and Node 20', () => {
    expect(dockerfile).toMatch(/^FROM nvidia\/cuda:11\.2\.2-cudnn8-runtime-ubuntu20\.04@/m);
    expect(dockerfile).toMatch(/^FROM node:20-/m);
    expect(dockerfile).toMatch(/ENTRYPOINT \["node", "--import", "tsx", "containers\/trainer\/src\/main\.ts"\]/);
  });

  it('pins tfjs-node-gpu 4.22.0 in the trainer package only, matching the project tfjs it joins', () => {
    expect(readJson('containers/trainer/package.json').dependencies).toEqual({ '@tensorflow/tfjs-node-gpu': '4.22.0' });
    const root = readJson('package.json');
    expect(Object.keys({ ...root.dependencies, ...root.devDependencies })).not.toContainEqual(
      expect.stringMatching(/^@tensorflow\/tfjs-node/),
    );
    // tfjs-node-gpu 4.22.0 depends on @tensorflow/tfjs 4.22.0 exactly: the locked project version must be the same,
    // or the image would hold two tfjs-core copies and the GPU backend would register on the wrong one.
    expect(readJson('package-lock.json').packages['node_modules/@tensorflow/tfjs'].version).toBe('4.22.0');
  });
});

describe('CPU trainer with Spot and a pre-built image (context options)', () => {
  it('asks for no GPU and does not require one', () => {
    const container = only(cpu, 'AWS::Batch::JobDefinition').ContainerProperties;
    expect(container.ResourceRequirements.map((r: { Type: string }) => r.Type).sort()).toEqual(['MEMORY', 'VCPU']);
    expect(container.Environment).toContainEqual({ Name: 'TEXTSHIFT_REQUIRE_GPU', Value: '0' });
  });

  it('uses Spot capacity of the given CPU instance types on the standard AMI', () => {
    expect(only(cpu, 'AWS::Batch::ComputeEnvironment').ComputeResources).toMatchObject({
      Type: 'SPOT',
      AllocationStrategy: 'SPOT_PRICE_CAPACITY_OPTIMIZED',
      InstanceTypes: ['c6i.2xlarge', 'm6i.xlarge'],
      Ec2Configuration: [{ ImageType: 'ECS_AL2023' }],
      MinvCpus: 0,
    });
    expect(only(cpu, 'AWS::Batch::JobQueue').JobQueueName).toBe('textshift-trainer-cpu');
  });

  it('pulls the given ECR image and builds nothing', () => {
    const image = JSON.stringify(only(cpu, 'AWS::Batch::JobDefinition').ContainerProperties.Image);
    expect(image).toContain('/textshift-trainer:v1');
    expect(dockerImages(cpu)).toEqual([]);
  });
});
