import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Size } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { acknowledge } from '../nag.js';
import { Construct } from 'constructs';
import { DEPLOYMENT_ENV } from '#src/config/deployment-env.js';

/** The repository root: bundling reads `functions/`, `src/`, package.json and the lock file from here. */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const requireFromRoot = createRequire(path.join(PROJECT_ROOT, 'package.json'));

/**
 * A package that cannot be bundled (native binary, or files it loads from its own folder) and is copied
 * next to the bundle instead, keeping only the listed paths so the zip stays small.
 */
export interface CopiedPackage {
  name: string;
  /** Paths inside the package to copy; package.json is always copied. */
  paths: string[];
}

export interface StageFunctionProps {
  /** Folder under `functions/` holding `index.ts`. */
  folder: string;
  functionName: string;
  description: string;
  bucket: s3.IBucket;
  memoryMb: number;
  timeoutSeconds: number;
  logRetentionDays: number;
  architecture: lambda.Architecture;
  /** Scratch space in /tmp (a BERT model folder is ~440 MB); Lambda's default is 512 MB. */
  ephemeralStorageMb?: number;
  /** Concurrent invocations reserved for (and at most allowed to) the function; unset, it shares the account's pool. */
  reservedConcurrency?: number;
  copiedPackages?: CopiedPackage[];
  /** Files of installed packages copied next to the bundle (`<package>/<path>`), e.g. WebAssembly binaries a
   * bundled module loads from its own directory. */
  bundleFiles?: string[];
}

/** The installed folder of a package, found the way Node looks it up from the project root. */
function packageFolder(name: string): string {
  const folder = (requireFromRoot.resolve.paths(name) ?? [])
    .map((dir) => path.join(dir, name))
    .find((dir) => existsSync(path.join(dir, 'package.json')));
  if (!folder) throw new Error(`package "${name}" is not installed under ${PROJECT_ROOT}: run npm ci`);
  return folder;
}

/** Absolute path of `<package>/<path inside it>` in the installed packages. */
function packageFile(file: string): string {
  const parts = file.split('/');
  const nameLength = file.startsWith('@') ? 2 : 1;
  return path.join(packageFolder(parts.slice(0, nameLength).join('/')), ...parts.slice(nameLength));
}

/** Shell commands that copy the trimmed packages into the bundle's node_modules. */
function copyCommands(outputDir: string, packages: CopiedPackage[]): string[] {
  const commands: string[] = [];
  for (const pkg of packages) {
    const from = packageFolder(pkg.name);
    const to = path.join(outputDir, 'node_modules', pkg.name);
    commands.push(`mkdir -p "${to}"`, `cp "${from}/package.json" "${to}/"`);
    for (const p of pkg.paths) {
      commands.push(`mkdir -p "$(dirname "${to}/${p}")"`, `cp -R "${from}/${p}" "${to}/${p}"`);
    }
  }
  return commands;
}

/**
 * One workflow stage as a Lambda: `functions/<folder>/index.ts` bundled by the locally installed esbuild
 * (no Docker at synth), Node.js 22, ESM, with its own log group and a role that may only write to it.
 * Bucket access is granted by the caller, per key prefix.
 */
export class StageFunction extends Construct {
  readonly fn: NodejsFunction;
  readonly role: iam.Role;
  /** `/aws/lambda/<functionName>`: its invocations' logs, REPORT lines included. */
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: StageFunctionProps) {
    super(scope, id);

    // An explicit log group (not the deprecated logRetention custom resource) so retention is plain CloudFormation.
    const logGroup = (this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/lambda/${props.functionName}`,
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    }));

    // Own role instead of AWSLambdaBasicExecutionRole: it can write to this function's log group only.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.functionName}: its log group and the bucket prefixes it uses`,
    });
    logGroup.grantWrite(this.role);

    const copied = props.copiedPackages ?? [];
    this.fn = new NodejsFunction(this, 'Function', {
      functionName: props.functionName,
      description: props.description,
      entry: path.join(PROJECT_ROOT, 'functions', props.folder, 'index.ts'),
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: props.architecture,
      memorySize: props.memoryMb,
      timeout: Duration.seconds(props.timeoutSeconds),
      ephemeralStorageSize: props.ephemeralStorageMb ? Size.mebibytes(props.ephemeralStorageMb) : undefined,
      reservedConcurrentExecutions: props.reservedConcurrency,
      role: this.role,
      logGroup,
      environment: {
        [DEPLOYMENT_ENV.bucket]: props.bucket.bucketName,
        [DEPLOYMENT_ENV.nodeOptions]: '--enable-source-maps',
      },
      bundling: {
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        // CommonJS dependencies call require(); an ESM bundle has none unless we create it.
        // ... and emscripten-built modules (tfjs-backend-wasm) locate their .wasm through __dirname.
        banner:
          "import { createRequire as __textshiftRequire } from 'node:module'; import { fileURLToPath as __textshiftPath } from 'node:url'; " +
          "const require = __textshiftRequire(import.meta.url); const __filename = __textshiftPath(import.meta.url); " +
          "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
        minify: true,
        keepNames: true,
        sourceMap: true,
        // The SDK is bundled (not the runtime's copy) so Lambda runs the versions our lock file pins.
        externalModules: copied.map((p) => p.name),
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_inputDir: string, outputDir: string) => [
            ...copyCommands(outputDir, copied),
            ...(props.bundleFiles ?? []).map((file) => `cp "${packageFile(file)}" "${outputDir}/"`),
          ],
        },
      },
    });

    acknowledge(
      this.fn,
      'AwsSolutions-L1',
      'Node.js 22 is pinned on purpose: the LTS closest to the Node 20 the code is developed and tested on ' +
        '(engines >=20); moving the functions to Node 24 is a deliberate, tested upgrade.',
    );
  }
}
