// cdk-nag (v3) runs as a CDK policy-validation plugin; findings are acknowledged with CDK's Validations API.
import { Stack, Validations } from 'aws-cdk-lib';
import cdkNag from 'cdk-nag';
import type { IConstruct } from 'constructs';

// cdk-nag is CommonJS whose exports Node's ESM loader cannot detect statically: take them from the module object.
export const { AwsSolutionsChecks } = cdkNag;

/**
 * Acknowledges one cdk-nag finding on a construct and everything under it, with the reason it is acceptable.
 * `finding` is a rule id (`AwsSolutions-S1`) or a rule id with its finding (`AwsSolutions-IAM5[Resource::*]`).
 */
export function acknowledge(scope: IConstruct, finding: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: finding, reason });
}

/**
 * A CloudFormation reference as cdk-nag prints it inside a finding (`<LogicalId.Attribute>` or `<LogicalId>`),
 * so acknowledgements can name the exact resource instead of hard-coding logical ids.
 */
export function nagRef(scope: IConstruct, token: string): string {
  const resolved = Stack.of(scope).resolve(token) as { 'Fn::GetAtt'?: [string, string]; Ref?: string };
  if (resolved['Fn::GetAtt']) return `<${resolved['Fn::GetAtt'][0]}.${resolved['Fn::GetAtt'][1]}>`;
  if (resolved.Ref) return `<${resolved.Ref}>`;
  throw new Error(`nagRef: ${JSON.stringify(resolved)} is not a Ref or Fn::GetAtt`);
}
