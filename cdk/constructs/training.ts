import { Annotations, Duration, IgnoreMode, RemovalPolicy, Size, Stack } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge } from '../nag.js';
import { grantPrefixes } from './bucket-access.js';
import { PROJECT_ROOT } from './stage-function.js';
import { DEPLOYMENT_ENV } from '#src/config/deployment-env.js';
import { PREFIXES } from '#src/run/keys.js';
import { EXIT_TEMPFAIL } from '#src/errors/exit-code.js';
import { STAGES } from '#src/run/graph.js';
import { QUEUE_TIME_LIMIT_REASONS } from '#src/errors/time-limits.js';

/** The training stage's task as the stage graph declares it (its job's attempts). */
const TRAIN_TASK = STAGES.flatMap((s) => (s.aws.on === 'batch' ? [s.aws] : []))[0]!;

export interface TrainingProps {
  prefix: string;
  bucket: s3.IBucket;
  /** `gpu`: GPU instances and a GPU per job; `cpu`: for accounts without GPU quota. */
  compute: 'gpu' | 'cpu';
  instanceTypes: string[];
  spot: boolean;
  maxVcpus: number;
  vcpus: number;
  memoryMiB: number;
  timeoutMinutes: number;
  /** How long a job may wait RUNNABLE before the queue cancels it (the job timeout counts RUNNING time only). */
  runnableTimeoutMinutes: number;
  /** An existing VPC (its private subnets with egress are used); otherwise a new one is created. */
  vpcId?: string;
  /** A pre-built image `<ecr repository>:<tag>` instead of building containers/trainer at deploy. */
  image?: string;
  /** Digests (`sha256:...`) of the Dockerfile's base images, passed as its build arguments; the build needs both. */
  baseImageDigests?: { node?: string; cuda?: string };
  logRetentionDays: number;
}

/**
 * Files of the repository the trainer image is built from (Docker ignore syntax: exclude all, re-include).
 * Keeps the asset small and its hash independent of tests, docs and node_modules.
 */
export const TRAINER_BUILD_CONTEXT = [
  '*',
  '!package.json',
  '!package-lock.json',
  '!src',
  '!containers/trainer',
];

/**
 * The trainer on AWS Batch: one job per feature family trains stage 1, fine-tunes stage 2 and evaluates,
 * with TensorFlow.js on the GPU. Instances scale from zero, so an idle stack costs nothing for compute.
 */
export class Training extends Construct {
  readonly jobQueue: batch.JobQueue;
  readonly jobDefinition: batch.EcsJobDefinition;
  readonly jobRole: iam.Role;

  constructor(scope: Construct, id: string, props: TrainingProps) {
    super(scope, id);
    const gpu = props.compute === 'gpu';

    // Network for the instances. A new VPC has public subnets only (no NAT gateway to pay for while idle) and a
    // free S3 gateway endpoint for the data traffic; instances accept no inbound connections.
    let vpc: ec2.IVpc;
    let vpcSubnets: ec2.SubnetSelection;
    if (props.vpcId) {
      vpc = ec2.Vpc.fromLookup(this, 'Vpc', { vpcId: props.vpcId });
      vpcSubnets = { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };
    } else {
      const flowLogs = new logs.LogGroup(this, 'FlowLogs', {
        retention: props.logRetentionDays as logs.RetentionDays,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      vpc = new ec2.Vpc(this, 'Vpc', {
        maxAzs: 2,
        natGateways: 0,
        subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
        gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
        // Rejected connections are the interesting part for instances that accept none.
        flowLogs: {
          rejected: { trafficType: ec2.FlowLogTrafficType.REJECT, destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs) },
        },
      });
      vpcSubnets = { subnetType: ec2.SubnetType.PUBLIC };
    }

    // Managed EC2 capacity that scales to zero vCPUs between runs; GPU AMI (NVIDIA driver) for GPU types.
    const launchTemplate = instanceLaunchTemplate(this);
    const computeEnvironment = new batch.ManagedEc2EcsComputeEnvironment(this, 'ComputeEnvironment', {
      vpc,
      vpcSubnets,
      launchTemplate,
      instanceTypes: props.instanceTypes.map((t) => new ec2.InstanceType(t)),
      useOptimalInstanceClasses: false,
      images: [{ imageType: gpu ? batch.EcsMachineImageType.ECS_AL2023_NVIDIA : batch.EcsMachineImageType.ECS_AL2023 }],
      spot: props.spot,
      allocationStrategy: props.spot
        ? batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED
        : batch.AllocationStrategy.BEST_FIT_PROGRESSIVE,
      minvCpus: 0,
      maxvCpus: props.maxVcpus,
      updateToLatestImageVersion: true,
    });
    // CDK names only the template's id, which Batch resolves to its default version once, when the environment is
    // created; naming the version makes a changed template update the environment.
    (computeEnvironment.node.defaultChild as batch.CfnComputeEnvironment).addPropertyOverride(
      'ComputeResources.LaunchTemplate.Version',
      launchTemplate.versionNumber,
    );
    acknowledge(
      computeEnvironment,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]',
      'The documented instance role policy for Batch/ECS container instances (ECS agent registration and polling); ' +
        'job code runs with the separate, bucket-scoped job role.',
    );

    // The queue the state machine submits to. A job that cannot start (no instance capacity, a vCPU quota or
    // maxvCpus below what it asks for, no instance type that fits it) would wait RUNNABLE forever: after the
    // configured time the queue cancels it, for each blocking reason Batch reports, and the run fails with that reason.
    this.jobQueue = new batch.JobQueue(this, 'JobQueue', {
      jobQueueName: `${props.prefix}-trainer-${props.compute}`,
      computeEnvironments: [{ computeEnvironment, order: 1 }],
      jobStateTimeLimitActions: Object.keys(QUEUE_TIME_LIMIT_REASONS).map((reason) => ({
        action: batch.JobStateTimeLimitActionsAction.CANCEL,
        maxTime: Duration.minutes(props.runnableTimeoutMinutes),
        reason: reason as batch.JobStateTimeLimitActionsReason,
        state: batch.JobStateTimeLimitActionsState.RUNNABLE,
      })),
    });

    // What the training code may do: read its run and the feature cache (features are computed before training,
    // so never models/); write only under runs/.
    this.jobRole = new iam.Role(this, 'JobRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'textshift trainer job: read runs/ cache/, write runs/',
    });
    grantPrefixes(this.jobRole, props.bucket, {
      read: [`${PREFIXES.runs}*`, `${PREFIXES.cache}*`],
      write: [`${PREFIXES.runs}*`],
    });

    // Built from containers/trainer at deploy (Docker needed then, not at synth), or a pre-built ECR image.
    const image = props.image
      ? ecs.ContainerImage.fromEcrRepository(
          ecr.Repository.fromRepositoryName(this, 'TrainerRepository', props.image.slice(0, props.image.lastIndexOf(':'))),
          props.image.slice(props.image.lastIndexOf(':') + 1),
        )
      : ecs.ContainerImage.fromAsset(PROJECT_ROOT, {
          file: 'containers/trainer/Dockerfile',
          platform: Platform.LINUX_AMD64,
          ignoreMode: IgnoreMode.DOCKER,
          exclude: TRAINER_BUILD_CONTEXT,
          buildArgs: baseImageBuildArgs(this, props.baseImageDigests ?? {}),
        });

    const jobLogs = new logs.LogGroup(this, 'JobLogs', {
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // One job = one feature family; Batch substitutes the state machine's parameters into the command.
    const container = new batch.EcsEc2ContainerDefinition(this, 'Container', {
      image,
      cpu: props.vcpus,
      memory: Size.mebibytes(props.memoryMiB),
      gpu: gpu ? 1 : undefined,
      command: ['--run-id', 'Ref::runId', '--feature', 'Ref::feature'],
      environment: {
        [DEPLOYMENT_ENV.bucket]: props.bucket.bucketName,
        // ECS on EC2 does not always set the region for the container; the SDK needs it to reach the bucket.
        [DEPLOYMENT_ENV.region]: Stack.of(this).region,
        // Fail fast if TensorFlow.js silently falls back to the CPU on a GPU instance.
        [DEPLOYMENT_ENV.requireGpu]: gpu ? '1' : '0',
      },
      jobRole: this.jobRole,
      // The image's own unprivileged user, set here too so that a pre-built image (trainerImage) cannot run as root.
      user: TRAINER_USER,
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'trainer', logGroup: jobLogs }),
    });
    acknowledge(
      container,
      'AwsSolutions-IAM5[Resource::*]',
      'ecr:GetAuthorizationToken (pulling the trainer image) has no resource-level permissions; layer reads are ' +
        'limited to the image repository.',
    );
    this.jobDefinition = new batch.EcsJobDefinition(this, 'JobDefinition', {
      jobDefinitionName: `${props.prefix}-trainer`,
      container,
      // A transient failure (the trainer exits EX_TEMPFAIL: throttling, a 5xx, a dropped connection) or a reclaimed
      // Spot instance retries the job (training resumes from its last checkpoint); other failures end it at once,
      // and the state machine's Catch records them.
      retryAttempts: TRAIN_TASK.attempts,
      retryStrategies: [
        batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.custom({ onExitCode: String(EXIT_TEMPFAIL) })),
        batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.SPOT_INSTANCE_RECLAIMED),
        batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom({ onReason: '*' })),
      ],
      timeout: Duration.minutes(props.timeoutMinutes),
    });
  }
}

/** uid:gid the trainer runs as: the unprivileged user its Dockerfile creates (`USER`). */
export const TRAINER_USER = '10001:10001';

/** The Dockerfile's build arguments that pin its base images, and the context keys that set them. */
export const BASE_IMAGES = {
  node: { buildArg: 'NODE_IMAGE_DIGEST', contextKey: 'trainerNodeImageDigest' },
  cuda: { buildArg: 'CUDA_IMAGE_DIGEST', contextKey: 'trainerCudaImageDigest' },
} as const;

/** The base image digests as build arguments; warns at synth when one is missing, since the image build then fails. */
function baseImageBuildArgs(scope: Construct, digests: { node?: string; cuda?: string }): Record<string, string> {
  const args: Record<string, string> = {};
  const missing: string[] = [];
  for (const image of ['node', 'cuda'] as const) {
    const { buildArg, contextKey } = BASE_IMAGES[image];
    const digest = digests[image];
    if (digest) args[buildArg] = digest;
    else missing.push(contextKey);
  }
  if (missing.length > 0) {
    Annotations.of(scope).addWarningV2(
      'textshift:trainer-base-image-digests',
      `the trainer image is built at deploy, and its base images are pinned by digest: set ${missing.join(' and ')} in ` +
        'cdk.json or with -c (docs/aws.md, "Pinned inputs of the trainer image"), or the image build stops at its FROM line',
    );
  }
  return args;
}

/**
 * The firewall rule that keeps job containers away from the instance metadata service. Batch runs ECS-on-EC2 jobs in
 * the host network mode (Batch user guide, "Networking modes for AWS Batch jobs"), so a PUT response hop limit of 1
 * alone does not stop them: their requests leave from the host's own network stack. The trainer runs as an
 * unprivileged user (its Dockerfile), and only root (the ECS agent, ecs-init, the Docker daemon) may reach the
 * service. The job's AWS credentials come from the ECS agent's endpoint (169.254.170.2), not from the metadata service.
 */
export const IMDS_FIREWALL_RULE = 'iptables --wait --insert OUTPUT 1 --destination 169.254.169.254 --match owner ! --uid-owner 0 --jump REJECT';

/**
 * The instances' launch template: IMDSv2 only (a request needs a session token from a PUT, which a forwarded GET, as
 * in server-side request forgery, cannot obtain), tokens that travel one hop (a bridged container cannot use them), no
 * IPv6 metadata endpoint, and the firewall rule above.
 * Batch accepts launch template user data only as a MIME multi-part archive, which it merges with its own.
 */
function instanceLaunchTemplate(scope: Construct): ec2.LaunchTemplate {
  const script = ec2.UserData.forLinux();
  script.addCommands(IMDS_FIREWALL_RULE);
  const userData = new ec2.MultipartUserData();
  userData.addUserDataPart(script, ec2.MultipartBody.SHELL_SCRIPT, true);
  return new ec2.LaunchTemplate(scope, 'LaunchTemplate', {
    requireImdsv2: true,
    httpTokens: ec2.LaunchTemplateHttpTokens.REQUIRED,
    httpPutResponseHopLimit: 1,
    httpEndpoint: true,
    httpProtocolIpv6: false,
    instanceMetadataTags: false,
    userData,
  });
}
