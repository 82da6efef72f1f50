// The lint rule that keeps every AWS SDK client observable (eslint.config.js): the IAM conformance test judges the
// calls the observer of src/store/aws-calls.ts sees, so a client built outside the factories must not pass
// `npm run lint`. Run through ESLint's Node API with the project's own config, on code as it would sit in the repo.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The modules allowed to build clients: each wraps them in `observable`. */
const FACTORIES = ['src/store/s3-client.ts', 'functions/report/billing-client.ts'];

const eslint = new ESLint({ cwd: ROOT });

/** The rule ids and messages ESLint reports for `code` saved as `filePath` (relative to the repository). */
async function lint(filePath: string, code: string): Promise<{ rule: string | null; line: number; message: string }[]> {
  const [result] = await eslint.lintText(code, { filePath: `${ROOT}${filePath}` });
  return result!.messages.map((m) => ({ rule: m.ruleId, line: m.line, message: m.message }));
}

describe('no bare AWS SDK client in the product (eslint.config.js)', () => {
  it('refuses a Report stage building its own S3Client, naming the factories', async () => {
    const code = [
      "import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';",
      '/** Reads a dataset. */',
      "export const read = () => new S3Client({}).send(new GetObjectCommand({ Bucket: 'b', Key: 'datasets/sst2/train.tsv' }));",
      '',
    ].join('\n');
    const messages = await lint('functions/report/datasets.ts', code);
    expect(messages.map(({ rule, line }) => ({ rule, line }))).toEqual([
      { rule: '@typescript-eslint/no-restricted-imports', line: 1 },
      { rule: 'no-restricted-syntax', line: 3 },
    ]);
    expect(messages[1]!.message).toMatch(/^AWS SDK clients are built only in src\/store\/s3-client\.ts .* and functions\/report\/billing-client\.ts: use those factories/);
  });

  it('refuses the other ways to one: another service, a namespace import, an aliased import, a dynamic import', async () => {
    const cases: [string, string][] = [
      ['src/cost/x.ts', "import { SFNClient } from '@aws-sdk/client-sfn';\nexport const c = new SFNClient({});\n"],
      ['src/store/x.ts', "import * as s3 from '@aws-sdk/client-s3';\nexport const c = new s3.S3Client({});\n"],
      ['scripts/x.ts', "import { CloudWatchLogsClient as Logs } from '@aws-sdk/client-cloudwatch-logs';\nexport const c = Reflect.construct(Logs, [{}]);\n"],
      ['containers/trainer/src/x.ts', "export const sdk = await import('@aws-sdk/client-batch');\n"],
    ];
    for (const [file, code] of cases) {
      const rules = (await lint(file, code)).map((m) => m.rule);
      expect(rules.some((r) => r === 'no-restricted-syntax' || r === '@typescript-eslint/no-restricted-imports'), `${file}: ${code}`).toBe(true);
    }
  });

  it('allows type-only imports and commands, the factories themselves, and tests', async () => {
    const usesAClient = "import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';\nexport const get = (c: S3Client) => c.send(new GetObjectCommand({ Bucket: 'b', Key: 'k' }));\n";
    expect(await lint('src/store/x.ts', usesAClient)).toEqual([]);
    const builds = "import { S3Client } from '@aws-sdk/client-s3';\nexport const c = new S3Client({});\n";
    for (const file of [...FACTORIES, 'test/integration/support/x.ts']) expect(await lint(file, builds), file).toEqual([]);
    for (const file of FACTORIES) expect(existsSync(`${ROOT}${file}`), file).toBe(true);
  });
});
