// Report Lambda: {runId, executionArn} -> report() -> keys of the results, report, cost report and checkpoint
// archive. On AWS the cost report prices the execution's billed usage (history, Batch jobs, REPORT lines).
import { DEPLOYMENT_ENV, missingEnv, readDeploymentEnv } from '#src/config/deployment-env.js';
import { collectBilledUsage, type BillingApis } from '#src/cost/billing.js';
import type { RunUsage } from '#src/cost/cost.js';
import { deploymentStageContext } from '#src/workflow/deployment-context.js';
import { report } from '#src/workflow/stages/report.js';
import { fencedContext } from '#src/workflow/fence.js';
import { releaseExecutionLease } from '#src/run/run-lock.js';
import type { ReportOutput } from '#src/workflow/stage-io.js';
import { parseReportInput } from '../shared/events.js';
import { awsBillingApis } from './billing-client.js';
import { classified } from '../shared/classified.js';

/** The part of the Lambda context the handler reads. */
interface LambdaContext {
  memoryLimitInMB?: string;
}

/** A Report handler that reads billed usage through `apis` (the SDK on AWS; recorded responses in tests); errors leave classified. */
export function reportHandler(apis: () => BillingApis) {
  return classified(async (event: unknown, context?: LambdaContext): Promise<ReportOutput> => {
    const started = Date.now();
    const input = parseReportInput(event);
    // What the stack tells Report: the deployment's pricing choices and the names of its stage functions.
    const { costOptions, stageFunctions } = readDeploymentEnv();
    const { executionArn } = input;
    // Without an execution ARN (not started by the state machine) there is nothing billed to read.
    const billedUsage =
      executionArn === undefined
        ? undefined
        : (measured: RunUsage) => {
            // Stage name -> function name of this deployment: whose REPORT lines to read.
            if (!stageFunctions) throw missingEnv(DEPLOYMENT_ENV.stageFunctions);
            const memoryMb: Record<string, number> = costOptions?.lambdaMemoryMb ?? {};
            const current = { stage: 'report', seconds: (Date.now() - started) / 1000, memoryMb: Number(context?.memoryLimitInMB ?? memoryMb.report ?? 0) };
            return collectBilledUsage(apis(), { executionArn, functions: stageFunctions, memoryMb, measured, current });
          };
    // Report writes the run as its execution's task: fenced by the lease it found, released once the run is complete.
    const { ctx } = await fencedContext(deploymentStageContext(input.runId), input.runId);
    const out = await report(ctx, { runId: input.runId }, { ...(billedUsage ? { billedUsage } : {}), ...(costOptions ? { costOptions } : {}) });
    if (executionArn !== undefined) await releaseExecutionLease(ctx.store, input.runId, executionArn);
    return out;
  });
}

/** Lambda entry point. */
export const handler = reportHandler(awsBillingApis);
