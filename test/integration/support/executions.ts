/** Watching Step Functions executions from a test: bounded polling, executions with their parsed input. */
import { DescribeExecutionCommand, type ExecutionStatus, type SFNClient, paginateListExecutions } from '@aws-sdk/client-sfn';

/** An execution as a test looks at it. */
export interface Execution {
  arn: string;
  name: string;
  status: ExecutionStatus | undefined;
  startDate: Date;
  input: unknown;
  /** The output of a succeeded execution, parsed. */
  output: unknown;
  /** The error and cause a failed execution ended with. */
  error?: string;
  cause?: string;
}

/**
 * Calls `probe` every `intervalMs` until it returns something other than undefined, and returns that; after
 * `timeoutMs` throws naming `what` was awaited and the last value seen by `describe`.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  options: { timeoutMs: number; intervalMs?: number; describe?: () => string },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${options.timeoutMs / 1000} s waiting for ${what}${options.describe ? `; last seen: ${options.describe()}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 500));
  }
}

/**
 * Every execution of a state machine started at or after `since` (give or take a minute of clock skew: callers
 * pick theirs out by input or name), newest first, with its input parsed.
 */
export async function executionsSince(sfn: SFNClient, stateMachineArn: string, since: Date): Promise<Execution[]> {
  const out: Execution[] = [];
  // Listing is newest first: stop at the first page that reaches back before `since`.
  for await (const page of paginateListExecutions({ client: sfn }, { stateMachineArn })) {
    const recent = (page.executions ?? []).filter((e) => e.startDate && e.startDate.getTime() >= since.getTime() - 60_000);
    for (const e of recent) {
      const d = await sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }));
      const failure = { ...(d.error === undefined ? {} : { error: d.error }), ...(d.cause === undefined ? {} : { cause: d.cause }) };
      out.push({ arn: e.executionArn!, name: e.name!, status: d.status, startDate: e.startDate!, input: JSON.parse(d.input ?? 'null'), output: JSON.parse(d.output ?? 'null'), ...failure });
    }
    if (recent.length < (page.executions ?? []).length) break;
  }
  return out;
}
