// Report Lambda: run id -> report() -> keys of the results, report, cost report and checkpoint archive.
import { report } from '#src/workflow/stages/report.js';
import type { ReportOutput } from '#src/workflow/stage-io.js';
import { parseReportInput } from '../shared/events.js';
import { awsStageContext } from '../shared/stage-context.js';

/** Lambda entry point. */
export async function handler(event: unknown): Promise<ReportOutput> {
  const input = parseReportInput(event);
  return report(awsStageContext(input.runId), input);
}
