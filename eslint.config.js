import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** The product's code: what runs in a Lambda, the trainer image, the CLI and the tools beside them. */
const PRODUCT = ['src/**', 'functions/**', 'containers/**', 'cdk/**', 'scripts/**', 'bench/**'];

/** The modules that build AWS SDK clients, each wrapped in `observable` (src/store/aws-calls.ts). */
export const AWS_CLIENT_FACTORIES = ['src/store/s3-client.ts', 'functions/report/billing-client.ts'];

const BARE_CLIENT =
  'AWS SDK clients are built only in src/store/s3-client.ts (S3: s3ClientFromEnv, or a store from openStores/storeFromUrl) ' +
  'and functions/report/billing-client.ts: use those factories, or add the client to one (wrapped in observable(), so the ' +
  'IAM conformance test sees its calls) and list it in AWS_CLIENT_FACTORIES of eslint.config.js.';

export default tseslint.config(
  { ignores: ['node_modules/', '.cache/', 'cdk.out/', 'out/', '.scratch/', 'src/model/kernels/assembly/', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // One import statement per module and file (a type-only import beside it stays allowed).
      'no-duplicate-imports': ['error', { allowSeparateTypeImports: true }],
    },
  },
  {
    // The IAM policy evaluator of the conformance test is AGPL-3.0-or-later: a devDependency of the tests only,
    // never imported by the product, so never bundled into a Lambda or the trainer image.
    files: PRODUCT,
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@cloud-copilot/*'], message: '@cloud-copilot/* is AGPL-3.0-or-later: tests only (test/), never in the product.' }] },
      ],
    },
  },
  {
    // No bare AWS SDK client in the product: one would bypass the observer the IAM conformance test relies on (its
    // recording proxy sees it too, but only on the paths the tiny run takes). Type imports stay allowed.
    files: PRODUCT,
    ignores: AWS_CLIENT_FACTORIES,
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: 'NewExpression[callee.name=/^[A-Z]\\w*Client$/]', message: BARE_CLIENT },
        { selector: 'NewExpression[callee.property.name=/^[A-Z]\\w*Client$/]', message: BARE_CLIENT },
        { selector: 'ImportExpression[source.value=/^@aws-sdk.client-/]', message: BARE_CLIENT },
      ],
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@aws-sdk/client-*'], importNamePattern: '^[A-Z]\\w*Client$', allowTypeImports: true, message: BARE_CLIENT }] },
      ],
    },
  },
);
