// Shared by the cdk-*.test.ts files: synthesizes the real app in-process (no Docker, no AWS credentials).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { addTextshiftStack } from '../../cdk/textshift-app.js';
import type { TextshiftStack, TextshiftStackProps } from '../../cdk/textshift-stack.js';

/** The defaults users deploy with: cdk.json's context. */
export const CDK_CONTEXT: Record<string, unknown> = JSON.parse(
  readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8'),
).context;

/** Budget for one in-process synth in a hook (CloudFormation schema validation and cdk-nag included). */
export const SYNTH_TIMEOUT = 120_000;

export interface Synthesized {
  app: App;
  stack: TextshiftStack;
  assembly: ReturnType<App['synth']>;
  template: Template;
  outdir: string;
}

/**
 * Synthesizes the app exactly as `cdk synth` does (cdk-nag and CloudFormation schema validation included; a
 * finding throws) with cdk.json's context plus `overrides`. Lambda bundling is skipped unless `bundle` is set,
 * which runs the local esbuild for every function; `workflowVariant` builds a test variant of the state machine.
 */
export function synth(
  overrides: Record<string, unknown> = {},
  options: { bundle?: boolean; workflowVariant?: TextshiftStackProps['workflowVariant'] } = {},
): Synthesized {
  const outdir = mkdtempSync(path.join(tmpdir(), 'textshift-cdk-'));
  const context = { ...CDK_CONTEXT, ...overrides, ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }) };
  const app = new App({ outdir, context });
  const stack = addTextshiftStack(app, options.workflowVariant);
  const assembly = app.synth();
  return { app, stack, assembly, template: Template.fromStack(stack), outdir };
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/**
 * A token-free copy of a CloudFormation value: `Ref`/`Fn::GetAtt` become readable placeholders
 * (`ref:Logical`, `arn:Logical`) and `Fn::Join` is joined, so ASL and ARNs can be parsed and compared.
 */
export function untokenize(value: Json): Json {
  if (Array.isArray(value)) return value.map(untokenize);
  if (value === null || typeof value !== 'object') return value;
  if ('Ref' in value) {
    const ref = value.Ref as string;
    return ref === 'AWS::Partition' ? 'aws' : ref.startsWith('AWS::') ? `{${ref}}` : `ref:${ref}`;
  }
  if ('Fn::GetAtt' in value) return `arn:${(value['Fn::GetAtt'] as string[])[0]}`;
  if ('Fn::Join' in value) {
    const [sep, parts] = value['Fn::Join'] as [string, Json[]];
    return parts.map((p) => String(untokenize(p))).join(sep);
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, untokenize(v)]));
}

/** Every resource of a type, as [logicalId, untokenized properties]. */
export function resourcesOf(template: Template, type: string): [string, Record<string, Json>][] {
  return Object.entries(template.findResources(type)).map(([id, r]) => [id, untokenize(r.Properties ?? {}) as Record<string, Json>]);
}

/** The state machine's ASL definition, parsed. */
export function stateMachineDefinition(template: Template): AslDefinition {
  const [[, props]] = resourcesOf(template, 'AWS::StepFunctions::StateMachine') as [[string, { DefinitionString: string }]];
  return JSON.parse(props.DefinitionString) as AslDefinition;
}

export interface AslState {
  Type: string;
  Next?: string;
  End?: boolean;
  Resource?: string;
  Parameters?: Record<string, Json>;
  ResultSelector?: Record<string, Json>;
  ResultPath?: string | null;
  Retry?: { ErrorEquals: string[]; IntervalSeconds?: number; MaxAttempts?: number; BackoffRate?: number; MaxDelaySeconds?: number; JitterStrategy?: string }[];
  Catch?: { ErrorEquals: string[]; Next: string; ResultPath?: string }[];
  Choices?: { Next: string }[];
  Default?: string;
  MaxConcurrency?: number;
  ItemsPath?: string;
  ItemSelector?: Record<string, Json>;
  ItemProcessor?: AslDefinition & { ProcessorConfig?: { Mode: string; ExecutionType?: string } };
  ItemReader?: { Resource: string; ReaderConfig?: { InputType?: string }; Parameters: Record<string, Json> };
  ItemBatcher?: { MaxItemsPerBatch?: number; BatchInput?: Record<string, Json> };
  ResultWriter?: { Resource: string; Parameters: Record<string, Json> };
  ToleratedFailureCount?: number;
  ToleratedFailurePercentage?: number;
  Label?: string;
  TimeoutSeconds?: number;
  Error?: string;
  Cause?: string;
  ErrorPath?: string;
  CausePath?: string;
}

export interface AslDefinition {
  StartAt: string;
  States: Record<string, AslState>;
}
