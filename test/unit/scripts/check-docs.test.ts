import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDocs, githubSlug } from '../../../scripts/check-docs.js';

// A tiny repository: one good link and path of each kind beside one broken of each kind, so a checker that reports
// nothing, or everything, fails.
describe('check-docs', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'check-docs-'));
    mkdirSync(join(root, 'docs'));
    mkdirSync(join(root, 'src'));
    writeFileSync(join(root, 'src', 'real.ts'), '// Reads src/real.ts and src/gone.ts (see DESIGN.md), src/<name>.ts is a placeholder.\nexport const x = 1;\n');
    writeFileSync(
      join(root, 'README.md'),
      [
        '# Title',
        '',
        'See [the guide](docs/guide.md#the-cost-guard) and [a page](docs/nope.md).',
        'Also [here](#title) and [there](#nowhere).',
        '',
        'The code is in `src/real.ts`, not in `src/missing.ts`.',
        '```sh',
        'cat src/in-a-fence.ts',
        '```',
      ].join('\n'),
    );
    writeFileSync(join(root, 'docs', 'guide.md'), '# Guide\n\n### The cost guard\n\nBack to [the README](../README.md#title), [wrong](guide.md#the-guard).\n');
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('reports each broken link, anchor and missing path with its file and line, and nothing else', () => {
    const found = checkDocs(root).map((p) => `${p.file}:${p.line}: ${p.message}`);
    expect(found).toEqual([
      'README.md:3: broken link: docs/nope.md (no docs/nope.md)',
      'README.md:4: broken anchor: #nowhere (no heading #nowhere in README.md)',
      'README.md:6: names a repository path that does not exist: src/missing.ts',
      'docs/guide.md:5: broken anchor: guide.md#the-guard (no heading #the-guard in docs/guide.md)',
      'src/real.ts:1: comment names a repository path that does not exist: src/gone.ts',
      'src/real.ts:1: comment names a repository path that does not exist: DESIGN.md',
    ]);
  });

  it("makes GitHub's anchors", () => {
    expect(githubSlug('Side by side with the peers (`npm run bench -- --peers`)')).toBe('side-by-side-with-the-peers-npm-run-bench------peers');
    expect(githubSlug('2 December 2026')).toBe('2-december-2026');
    expect(githubSlug('First run: upload data, a model and an experiment')).toBe('first-run-upload-data-a-model-and-an-experiment');
  });

  it('finds nothing to report in this repository', () => {
    expect(checkDocs(process.cwd())).toEqual([]);
  });
});
