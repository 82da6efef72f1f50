import { z } from 'zod';
import { ConfigError } from '../errors/index.js';
import { defaultDataLocation, S3_BUCKET_NAME, S3_ENV, type StoreLocations } from '../store/index.js';
import { DeploymentCostOptions, FUNCTION_NAMES, type FunctionName } from './deployment.js';

/**
 * The environment half of the deployment contract: every variable the stack sets on the stage functions and the
 * trainer job, or the edges (handlers, trainer entry) read. The stack sets them by these names and the edges read
 * them only through `readDeploymentEnv`, so a renamed variable cannot leave one side behind.
 */
export const DEPLOYMENT_ENV = {
  /** The deployment's bucket, set on every stage function and the trainer job: the run store is its root. */
  bucket: 'BUCKET',
  /** Another run store than the bucket (`file:///dir`, a folder path, `s3://bucket/prefix`); wins over BUCKET. */
  storeUrl: 'TEXTSHIFT_STORE_URL',
  /** The data root (a store location); defaults to the run store's `datasets/` folder, as in the bucket. */
  dataUrl: 'TEXTSHIFT_DATA_URL',
  /** JSON of the deployment's pricing choices (`costOptionsOf`), set on the Report function. */
  costOptions: 'TEXTSHIFT_COST_OPTIONS',
  /** JSON of stage name -> Lambda function name, set on the Report function: whose REPORT lines it prices. */
  stageFunctions: 'TEXTSHIFT_STAGE_FUNCTIONS',
  /**
   * The featurize function's timeout in seconds, set on the Prepare function: an experiment without a `shardSize`
   * gets shards that take at most a third of it (src/features/throughput.ts).
   */
  featurizeTimeout: 'TEXTSHIFT_FEATURIZE_TIMEOUT_SECONDS',
  /** `1` on a GPU job definition: the trainer fails fast when TensorFlow.js is not on a GPU; `0` or unset: it may use the CPU. */
  requireGpu: 'TEXTSHIFT_REQUIRE_GPU',
  /**
   * The native TensorFlow binding the trainer loads: a package name, or a package folder relative to the working
   * directory (the CPU twin `npm run build:tfjs-node` builds). Unset: the image's `@tensorflow/tfjs-node-gpu`.
   */
  tfBinding: 'TEXTSHIFT_TF_BINDING',
  /** The trainer's run id when `--run-id` is not given. */
  runId: 'RUN_ID',
  /** The trainer's feature family when `--feature` is not given. */
  feature: 'FEATURE',
  /** Node's own options: the stack sets `--enable-source-maps` on the stage functions, so stack traces name TypeScript lines. */
  nodeOptions: 'NODE_OPTIONS',
  /** The region, set on the trainer job (ECS on EC2 does not always set it); S3 reads it by the rule of `s3ClientConfig`. */
  region: S3_ENV.region,
} as const;

/** The variables that decide how S3 is reached (emulator and endpoint overrides, region, credentials); see `s3ClientConfig`. */
export { S3_ENV };

/** What the deployment environment says, parsed. */
export interface DeploymentEnv {
  /** The run store and data root: TEXTSHIFT_STORE_URL, else the bucket; undefined when neither is set. */
  stores?: StoreLocations;
  costOptions?: DeploymentCostOptions;
  stageFunctions?: Record<FunctionName, string>;
  featurizeTimeoutSeconds?: number;
  requireGpu: boolean;
  tfBinding?: string;
  runId?: string;
  feature?: string;
}

/** An unset variable and an empty one mean the same: not set. */
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === '' ? undefined : v), schema.optional());

/** A JSON text holding a value of `schema`. */
function json<T extends z.ZodType>(schema: T) {
  return z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `expected JSON: ${(err as Error).message}` });
        return z.NEVER;
      }
    })
    .pipe(schema);
}

const E = DEPLOYMENT_ENV;
const Env = z.object({
  [E.bucket]: optional(z.string().regex(S3_BUCKET_NAME, 'expected an S3 bucket name (3-63 lowercase letters, digits, "." or "-")')),
  [E.storeUrl]: optional(z.string()),
  [E.dataUrl]: optional(z.string()),
  [E.costOptions]: optional(json(DeploymentCostOptions)),
  [E.stageFunctions]: optional(json(z.record(z.enum(FUNCTION_NAMES), z.string().min(1)))),
  [E.featurizeTimeout]: optional(z.coerce.number().int().min(1).max(900)),
  [E.requireGpu]: optional(z.enum(['0', '1'])),
  [E.tfBinding]: optional(z.string()),
  [E.runId]: optional(z.string()),
  [E.feature]: optional(z.string()),
});

/**
 * Parses the deployment's variables out of an environment (default: this process's). Every variable is optional
 * here; an edge that needs one asks with `requireStores` or `missingEnv`. A variable that is set but malformed
 * throws a ConfigError naming it and what was expected.
 */
export function readDeploymentEnv(env: NodeJS.ProcessEnv = process.env): DeploymentEnv {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => {
      const [name, ...inside] = i.path.map(String);
      return `  ${name}${inside.length > 0 ? ` (${inside.join('.')})` : ''}: ${i.message}`;
    });
    throw new ConfigError(`invalid deployment environment:\n${problems.join('\n')}`);
  }
  const v = parsed.data;
  const bucket = v[E.bucket];
  const store = v[E.storeUrl] ?? (bucket === undefined ? undefined : `s3://${bucket}`);
  const out: DeploymentEnv = { requireGpu: v[E.requireGpu] === '1' };
  if (store !== undefined) out.stores = { store, data: v[E.dataUrl] ?? defaultDataLocation(store) };
  if (v[E.costOptions]) out.costOptions = v[E.costOptions];
  if (v[E.stageFunctions]) out.stageFunctions = v[E.stageFunctions];
  if (v[E.featurizeTimeout] !== undefined) out.featurizeTimeoutSeconds = v[E.featurizeTimeout];
  if (v[E.tfBinding] !== undefined) out.tfBinding = v[E.tfBinding];
  if (v[E.runId] !== undefined) out.runId = v[E.runId];
  if (v[E.feature] !== undefined) out.feature = v[E.feature];
  return out;
}

/** The error of a variable an edge needs and the environment does not set; `hint` says what to set. */
export function missingEnv(name: string, hint?: string): ConfigError {
  return new ConfigError(`environment variable ${name} is not set${hint ? `: ${hint}` : ''}`);
}

/** The run store and data root, which every stage needs: a ConfigError naming BUCKET when none is set. */
export function requireStores(env: DeploymentEnv): StoreLocations {
  if (env.stores) return env.stores;
  throw missingEnv(E.bucket, `it must name the data bucket (or set ${E.storeUrl} to a store location)`);
}
