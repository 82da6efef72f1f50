/**
 * Just enough of CloudFormation to turn a synthesized template's resources into API calls: the intrinsic functions
 * our template uses (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split), resolved against what the test deployer
 * created and stand-in ARNs for what the emulator cannot run (Lambda, Batch).
 */

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export interface CfnResource {
  Type: string;
  Properties?: Record<string, Json>;
}

export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
}

/** The physical name/ARN behind a logical id: what `Ref` returns and what each `Fn::GetAtt` attribute returns. */
export interface Physical {
  ref: string;
  attrs?: Record<string, string>;
}

/** Where the template is "deployed": account, region, and the physical values of its resources. */
export interface ResolveContext {
  account: string;
  region: string;
  resources: Map<string, Physical>;
}

/** The template's resources of one type, as [logicalId, resource]. */
export function resourcesOfType(template: CfnTemplate, type: string): [string, CfnResource][] {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === type);
}

/** The one resource of a type; throws naming the type when there is none or more than one. */
export function onlyResource(template: CfnTemplate, type: string): [string, CfnResource] {
  const found = resourcesOfType(template, type);
  if (found.length !== 1) throw new Error(`expected one ${type} in the template, found ${found.length}`);
  return found[0]!;
}

/**
 * The ARN a resource would have in the account, used where the emulator cannot create the resource itself:
 * nothing answers at it, but the definition that names it stays well-formed and can be matched back to the
 * resource (see physicalFor).
 */
export function standInArn(ctx: Pick<ResolveContext, 'account' | 'region'>, logicalId: string, resource: CfnResource): string {
  const { account, region } = ctx;
  const props = resource.Properties ?? {};
  switch (resource.Type) {
    case 'AWS::Lambda::Function':
      return `arn:aws:lambda:${region}:${account}:function:${String(props.FunctionName ?? logicalId)}`;
    case 'AWS::Batch::JobQueue':
      return `arn:aws:batch:${region}:${account}:job-queue/${String(props.JobQueueName ?? logicalId)}`;
    case 'AWS::Batch::JobDefinition':
      return `arn:aws:batch:${region}:${account}:job-definition/${String(props.JobDefinitionName ?? logicalId)}:1`;
    case 'AWS::Logs::LogGroup':
      return `arn:aws:logs:${region}:${account}:log-group:${String(props.LogGroupName ?? logicalId)}`;
    default:
      return `arn:aws:cloudformation:${region}:${account}:stand-in/${logicalId}`;
  }
}

function physicalFor(template: CfnTemplate, ctx: ResolveContext, logicalId: string): Physical {
  const deployed = ctx.resources.get(logicalId);
  if (deployed) return deployed;
  const resource = template.Resources[logicalId];
  if (!resource) throw new Error(`the template has no resource "${logicalId}"`);
  const arn = standInArn(ctx, logicalId, resource);
  // Ref of a Lambda function or a log group is its name; of a Batch queue or job definition, its ARN.
  const ref = ['AWS::Lambda::Function', 'AWS::Logs::LogGroup'].includes(resource.Type) ? arn.slice(arn.lastIndexOf(':') + 1) : arn;
  return { ref, attrs: { Arn: arn, JobQueueArn: arn } };
}

function pseudo(ctx: ResolveContext, name: string): string {
  const values: Record<string, string> = {
    'AWS::Partition': 'aws',
    'AWS::Region': ctx.region,
    'AWS::AccountId': ctx.account,
    'AWS::URLSuffix': 'amazonaws.com',
  };
  const value = values[name];
  if (value === undefined) throw new Error(`the test deployer does not know the pseudo parameter ${name}`);
  return value;
}

/** Resolves every intrinsic function in `value`; an intrinsic it does not know throws with its name. */
export function resolve(template: CfnTemplate, ctx: ResolveContext, value: Json): Json {
  if (Array.isArray(value)) return value.map((v) => resolve(template, ctx, v));
  if (value === null || typeof value !== 'object') return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && (keys[0] === 'Ref' || keys[0]!.startsWith('Fn::'))) {
    const [fn] = keys as [string];
    const arg = value[fn]!;
    switch (fn) {
      case 'Ref': {
        const name = arg as string;
        return name.startsWith('AWS::') ? pseudo(ctx, name) : physicalFor(template, ctx, name).ref;
      }
      case 'Fn::GetAtt': {
        const [id, attr] = (typeof arg === 'string' ? arg.split('.') : arg) as [string, string];
        const got = physicalFor(template, ctx, id).attrs?.[attr];
        if (got === undefined) throw new Error(`the test deployer has no value for Fn::GetAtt ${id}.${attr}`);
        return got;
      }
      case 'Fn::Join': {
        const [sep, parts] = arg as [string, Json[]];
        return parts.map((p) => String(resolve(template, ctx, p))).join(sep);
      }
      case 'Fn::Select': {
        const [index, list] = arg as [Json, Json];
        return (resolve(template, ctx, list) as Json[])[Number(resolve(template, ctx, index))]!;
      }
      case 'Fn::Split': {
        const [sep, text] = arg as [string, Json];
        return String(resolve(template, ctx, text)).split(sep);
      }
      case 'Fn::Sub': {
        const [text, vars] = (typeof arg === 'string' ? [arg, {}] : arg) as [string, Record<string, Json>];
        return text.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
          if (name in vars) return String(resolve(template, ctx, vars[name]!));
          const [id, attr] = name.split('.') as [string, string | undefined];
          return String(resolve(template, ctx, attr ? { 'Fn::GetAtt': [id, attr] } : { Ref: id }));
        });
      }
      default:
        throw new Error(`the test deployer does not support the intrinsic function ${fn}`);
    }
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(template, ctx, v)]));
}
