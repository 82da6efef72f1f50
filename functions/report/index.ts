// Report Lambda: {runId, executionArn} -> report() -> keys of the results, report, cost report and checkpoint
// archive. On AWS the cost report prices the execution's billed usage (history, Batch jobs, REPORT lines).
import { collectBilledUsage, type BillingApis } from '#src/cost/billing.js';
import type { CostOptions, RunUsage } from '#src/cost/cost.js';
import { report } from '#src/workflow/stages/report.js';
import type { ReportOutput } from '#src/workflow/stage-io.js';
import { parseReportInput } from '../shared/events.js';
import { awsStageContext } from '../shared/stage-context.js';
import { awsBillingApis } from './billing-client.js';
import { classified } from '../shared/classified.js';
import { ConfigError } from '#src/errors/index.js';

/** The deployment's pricing choices (instance type, market, Lambda memory per stage), set by the stack. */
export const COST_OPTIONS_ENV = 'TEXTSHIFT_COST_OPTIONS';
/** Stage name -> Lambda function name of this deployment, set by the stack: whose REPORT lines to read. */
export const STAGE_FUNCTIONS_ENV = 'TEXTSHIFT_STAGE_FUNCTIONS';

function jsonEnv<T>(name: string): T | undefined {
  const value = process.env[name];
  if (!value) return undefined;
  try {
    return JSON.parse(value) as T;
  } catch (err) {
    throw new ConfigError(`environment variable ${name} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The part of the Lambda context the handler reads. */
interface LambdaContext {
  memoryLimitInMB?: string;
}

/** A Report handler that reads billed usage through `apis` (the SDK on AWS; recorded responses in tests); errors leave classified. */
export function reportHandler(apis: () => BillingApis) {
  return classified(async (event: unknown, context?: LambdaContext): Promise<ReportOutput> => {
    const started = Date.now();
    const input = parseReportInput(event);
    const costOptions = jsonEnv<Partial<CostOptions>>(COST_OPTIONS_ENV);
    const { executionArn } = input;
    // Without an execution ARN (not started by the state machine) there is nothing billed to read.
    const billedUsage =
      executionArn === undefined
        ? undefined
        : (measured: RunUsage) => {
            const functions = jsonEnv<Record<string, string>>(STAGE_FUNCTIONS_ENV);
            if (!functions) throw new ConfigError(`environment variable ${STAGE_FUNCTIONS_ENV} is not set`);
            const memoryMb = costOptions?.lambdaMemoryMb ?? {};
            const current = { stage: 'report', seconds: (Date.now() - started) / 1000, memoryMb: Number(context?.memoryLimitInMB ?? memoryMb.report ?? 0) };
            return collectBilledUsage(apis(), { executionArn, functions, memoryMb, measured, current });
          };
    return report(awsStageContext(input.runId), { runId: input.runId }, { ...(billedUsage ? { billedUsage } : {}), ...(costOptions ? { costOptions } : {}) });
  });
}

/** Lambda entry point. */
export const handler = reportHandler(awsBillingApis);
