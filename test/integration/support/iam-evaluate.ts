/**
 * IAM decisions for the conformance test, by a real policy evaluator: @cloud-copilot/iam-simulate (identity and
 * resource policies, every condition operator, validation of actions, resource types and condition keys).
 *
 * Licence: iam-simulate is AGPL-3.0-or-later. It is a devDependency used by tests only; nothing under src/,
 * functions/, containers/ or cdk/ may import it, and it is never bundled into a Lambda or the trainer image.
 */
import { runSimulation } from '@cloud-copilot/iam-simulate';
import type { IamRequest } from './iam-requests.js';
import type { DeploymentPolicies, PolicyDocument, StageRole } from './iam-policies.js';

export type Decision = 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied';

/** One allowed action on one resource pattern of a role's policies. */
export interface Grant {
  action: string;
  resource: string;
  policy: string;
}

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

async function simulate(principal: string, account: string, request: IamRequest, identity: StageRole['policies'], resourcePolicy?: PolicyDocument): Promise<Decision> {
  const result = await runSimulation(
    {
      request: { principal, action: request.action, resource: { resource: request.resource, accountId: account }, contextVariables: request.context },
      identityPolicies: identity,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(resourcePolicy ? { resourcePolicy } : {}),
    },
    {},
  );
  if (result.resultType === 'error') {
    throw new Error(`the IAM simulator rejected ${request.action} on ${request.resource}: ${JSON.stringify(result.errors)}`);
  }
  return result.overallResult as Decision;
}

/**
 * The decision on `request` made with `role`: its identity policies, plus the data bucket's policy for a request on
 * the bucket or an object in it (same account, so an identity Allow suffices unless the bucket policy denies).
 */
export function decide(d: DeploymentPolicies, role: StageRole, request: IamRequest): Promise<Decision> {
  const onBucket = request.resource === d.bucketArn || request.resource.startsWith(`${d.bucketArn}/`);
  return simulate(role.principal, d.account, request, role.policies, onBucket ? d.bucketPolicy : undefined);
}

/** Every (action, resource pattern) a role's Allow statements grant. */
export function grantsOf(role: StageRole): Grant[] {
  return role.policies.flatMap(({ name, policy }) =>
    policy.Statement.filter((s) => s.Effect === 'Allow').flatMap((s) => {
      if (s.NotAction !== undefined || s.NotResource !== undefined) throw new Error(`${name}: NotAction/NotResource cannot be listed as grants`);
      if (s.Condition !== undefined) throw new Error(`${name}: a conditional grant cannot be listed by its action and resource alone`);
      return list(s.Action).flatMap((action) => list(s.Resource).map((resource) => ({ action, resource, policy: name })));
    }),
  );
}

const actionPattern = (pattern: string) => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i');

/** The grants of `role` that none of `requests` needs: no request is allowed by the grant alone. */
export async function unusedGrants(d: DeploymentPolicies, role: StageRole, requests: IamRequest[]): Promise<Grant[]> {
  const unused: Grant[] = [];
  for (const grant of grantsOf(role)) {
    const matches = actionPattern(grant.action);
    const policy = { name: 'grant', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow' as const, Action: grant.action, Resource: grant.resource }] } };
    let used = false;
    for (const r of requests.filter((q) => matches.test(q.action))) {
      if ((await simulate(role.principal, d.account, r, [policy])) === 'Allowed') {
        used = true;
        break;
      }
    }
    if (!used) unused.push(grant);
  }
  return unused;
}
