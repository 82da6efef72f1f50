/** What the cost tests plan: one small dataset, and the repository's cdk.json deployment with overrides. */
import { planDeploymentOf, readConfig, type PlanDeployment } from '../../src/config/deployment.js';
import { CDK_CONTEXT } from './cdk-template.js';

/** Dataset "a": file `a.tsv` split 80/20 into train/val, and a test file `a-test.tsv`. */
export const DATASET_A = {
  files: { full: { path: 'a.tsv', format: 'tsv', text: 0, label: 1 }, test: { path: 'a-test.tsv', format: 'tsv', text: 0, label: 1 } },
  labels: { '0': 0, '1': 1 },
  classNames: ['neg', 'pos'],
  splits: [{ from: 'full', testSize: 0.2, train: 'train', test: 'val' }],
};

/** The plan deployment of cdk.json's context with `overrides` (as `-c key=value` gives them). */
export function contextDeployment(overrides: Record<string, unknown> = {}): PlanDeployment {
  return planDeploymentOf(readConfig((key) => ({ ...CDK_CONTEXT, ...overrides })[key]));
}
