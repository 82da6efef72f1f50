import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.cache/', 'cdk.out/', 'out/', '.scratch/', 'src/model/kernels/assembly/', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // The IAM policy evaluator of the conformance test is AGPL-3.0-or-later: a devDependency of the tests only,
    // never imported by the product, so never bundled into a Lambda or the trainer image.
    files: ['src/**', 'functions/**', 'containers/**', 'cdk/**', 'scripts/**', 'bench/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@cloud-copilot/*'], message: '@cloud-copilot/* is AGPL-3.0-or-later: tests only (test/), never in the product.' }] },
      ],
    },
  },
);
