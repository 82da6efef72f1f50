// The layering rules of .dependency-cruiser.mjs (what `npm run lint` enforces), run through dependency-cruiser's API:
// on fixture trees they must catch an upward import and pass a downward one, and the repository must obey them.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseOptions, type ICruiseResult } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = path.join(ROOT, 'test/fixtures/layers');
/** The folders `npm run lint` cruises. */
const LINTED = ['src', 'functions', 'containers/trainer/src', 'cdk', 'scripts', 'bench', 'test'];

/** Cruises `paths` under `baseDir` with the project's rules and tsconfig, as the depcruise command does. */
async function cruiseWithProjectRules(baseDir: string, paths: string[]): Promise<ICruiseResult> {
  const options: ICruiseOptions = await extractDepcruiseOptions(path.join(ROOT, '.dependency-cruiser.mjs'));
  const tsConfig = extractTSConfig(path.join(ROOT, 'tsconfig.json'));
  const { output } = await cruise(paths, { ...options, baseDir }, {}, { tsConfig });
  if (typeof output === 'string') throw new Error(`dependency-cruiser returned text, not a result: ${output}`);
  return output;
}

describe('layering rules (.dependency-cruiser.mjs)', () => {
  it('report an upward import (src/store importing src/workflow) under rule layer-store, naming both files', async () => {
    const result = await cruiseWithProjectRules(path.join(FIXTURES, 'upward'), ['src']);
    expect(result.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }))).toEqual([
      { rule: 'layer-store', from: 'src/store/x.ts', to: 'src/workflow/y.ts' },
    ]);
    expect(result.summary.error).toBe(1);
  });

  it('allow the same two modules importing downward (src/workflow importing src/store)', async () => {
    const result = await cruiseWithProjectRules(path.join(FIXTURES, 'clean'), ['src']);
    expect(result.modules.map((m) => m.source).sort()).toEqual(['src/store/x.ts', 'src/workflow/y.ts']);
    expect(result.summary.violations).toEqual([]);
  });

  it('hold for the whole repository: no violation, no import cycle', async () => {
    const result = await cruiseWithProjectRules(ROOT, LINTED);
    expect(result.summary.violations).toEqual([]);
    expect(result.modules.filter((m) => m.dependencies.some((d) => d.circular)).map((m) => m.source)).toEqual([]);
    // The cruise really covered the edges and the core.
    const sources = result.modules.map((m) => m.source);
    for (const file of ['src/config/deployment-env.ts', 'functions/report/index.ts', 'containers/trainer/src/main.ts', 'cdk/textshift-stack.ts']) {
      expect(sources).toContain(file);
    }
  }, 60_000);
});
