/**
 * What Prepare's cost guard assumes in tests that call it directly: the repository's cdk.json (with `overrides`, as
 * `cdk deploy -c key=value` gives them), read as a local run reads it.
 */
import { planDeploymentOf, type PlanDeployment } from '../../src/config/deployment.js';
import { repositoryDeployment } from '../../src/workflow/local-runner.js';

/** The plan deployment of the repository's cdk.json with `overrides`. */
export async function testDeployment(overrides: Record<string, string> = {}): Promise<PlanDeployment> {
  return planDeploymentOf(await repositoryDeployment(overrides));
}
