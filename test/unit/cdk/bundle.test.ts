import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SYNTH_TIMEOUT, type Synthesized, resourcesOf, synth } from '../../support/cdk-template.js';
import { dataFile } from '../../support/data.js';
import { decodeNpy } from '../../../src/matrix/npy.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { readShardPlan } from '../../../src/run/shard-plan.js';
import { silentReporter } from '../../../src/run/reporter.js';
import { prepare } from '../../../src/workflow/stages/prepare.js';
import { testDeployment } from '../../support/deployment.js';

// The real Lambda bundling of `cdk synth`: the locally installed esbuild, no Docker daemon, no AWS credentials.
let synthesized: Synthesized;
const assetOf: Record<string, string> = {};

beforeAll(() => {
  synthesized = synth({}, { bundle: true });
  for (const [id, props] of resourcesOf(synthesized.template, 'AWS::Lambda::Function')) {
    const key = (props.Code as { S3Key: string }).S3Key;
    assetOf[id.replace(/Function[0-9A-F]{8}$/, '').replace(/Stage$/, '')] = path.join(synthesized.outdir, `asset.${key.replace(/\.zip$/, '')}`);
  }
}, SYNTH_TIMEOUT);

function sizeOf(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce((n, e) => {
    const p = path.join(dir, e.name);
    return n + (e.isDirectory() ? sizeOf(p) : statSync(p).size);
  }, 0);
}

describe('Lambda bundles (local esbuild, no Docker)', () => {
  it('builds one ESM bundle with a source map per function', () => {
    expect(Object.keys(assetOf).sort()).toEqual(['Featurize', 'MarkFailed', 'Prepare', 'Report']);
    for (const [name, dir] of Object.entries(assetOf)) {
      expect(existsSync(path.join(dir, 'index.mjs')), name).toBe(true);
      expect(existsSync(path.join(dir, 'index.mjs.map')), name).toBe(true);
    }
  });

  it('every bundle loads in Node and exports the handler (the ESM require shim works for CommonJS dependencies)', () => {
    for (const [name, dir] of Object.entries(assetOf)) {
      const probe = spawnSync(
        process.execPath,
        ['--input-type=module', '-e', "const m = await import('./index.mjs'); process.stdout.write(typeof m.handler)"],
        { cwd: dir, env: { ...process.env, BUCKET: 'textshift-test-bucket' }, encoding: 'utf8' },
      );
      expect(probe.stderr.split('\n').filter((l) => /Error/.test(l)), name).toEqual([]);
      expect(probe.stdout, name).toBe('function');
    }
  });

  it('featurize carries onnxruntime-node with only the linux/arm64 binary, resolvable from the bundle', () => {
    const modules = path.join(assetOf.Featurize!, 'node_modules');
    const bin = path.join(modules, 'onnxruntime-node', 'bin', 'napi-v6');
    expect(readdirSync(bin)).toEqual(['linux']);
    expect(readdirSync(path.join(bin, 'linux'))).toEqual(['arm64']);
    expect(readdirSync(path.join(bin, 'linux', 'arm64')).sort()).toEqual(['libonnxruntime.so.1', 'onnxruntime_binding.node']);
    // Node's resolution from the bundle finds the package and its runtime dependency.
    const requireFromBundle = createRequire(path.join(assetOf.Featurize!, 'index.mjs'));
    expect(existsSync(requireFromBundle.resolve('onnxruntime-node'))).toBe(true);
    expect(existsSync(requireFromBundle.resolve('onnxruntime-common'))).toBe(true);
  });

  it('featurize embeds a USE-lite shard from the bundle itself, on the TF.js WASM backend (weights and .wasm packaged)', async () => {
    // The default experiment's contextual family must work in the deployed function, not only from the repo.
    const root = mkdtempSync(path.join(tmpdir(), 'textshift-bundle-'));
    try {
      const store = new FsBlobStore(root);
      const exp = JSON.parse(readFileSync('test/fixtures/experiments/tiny.json', 'utf8')) as Record<string, unknown>;
      exp.features = { use: { kind: 'use', shardSize: 40 } };
      exp.quick = { sst2: { train: 40, val: 10, test: 10 }, imdb: { train: 10, val: 10, test: 10 } };
      await store.put('experiments/u.json', JSON.stringify(exp));
      for (const f of ['sst2/train.tsv', 'sst2/test.tsv', 'imdb.csv.gz']) await store.put(`datasets/${f}`, readFileSync(dataFile(f)));
      const data = new FsBlobStore(path.join(root, 'datasets'));
      const plan = await prepare({ store, data, reporter: silentReporter }, { experimentKey: 'experiments/u.json', quick: true }, { deployment: await testDeployment() });
      const [shardKey] = await readShardPlan(store, plan.runId, plan.shardPlan);
      const event = { runId: plan.runId, shardKey };
      const probe = spawnSync(
        process.execPath,
        ['--input-type=module', '-e', `const m = await import('./index.mjs'); process.stdout.write(JSON.stringify(await m.handler(${JSON.stringify(event)})))`],
        { cwd: assetOf.Featurize!, env: { ...process.env, TEXTSHIFT_STORE_URL: pathToFileURL(root).href }, encoding: 'utf8' },
      );
      // A failed WASM backend would fall back to the 30x slower pure-JS one with an error on stderr.
      expect(probe.stderr.split('\n').filter((l) => /Error|not defined/.test(l))).toEqual([]);
      const out = JSON.parse(probe.stdout) as { cacheKey: string; cached: boolean };
      expect(out.cached).toBe(false);
      const vectors = decodeNpy(await store.getOrThrow(out.cacheKey));
      expect([vectors.rows, vectors.cols]).toEqual([40, 512]);
      const norm = Math.hypot(...vectors.data.subarray(0, 512));
      expect(norm).toBeCloseTo(1, 4);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 120_000);

  it('errors leave a minified bundle under their class names (keepNames), the names the state machine matches', () => {
    // A malformed event: the invocation fails, and Lambda would report the error's name as its type.
    const probe = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', "const m = await import('./index.mjs'); await m.handler({}).catch((e) => process.stdout.write(JSON.stringify([e.name, e.retryable])))"],
      { cwd: assetOf.Featurize!, env: { ...process.env, BUCKET: 'textshift-test-bucket' }, encoding: 'utf8' },
    );
    expect(JSON.parse(probe.stdout)).toEqual(['InvalidInputError', false]);
  });

  it('stays far below Lambda 250 MB unzipped limit', () => {
    const sizes = Object.fromEntries(Object.entries(assetOf).map(([n, d]) => [n, sizeOf(d) / 2 ** 20]));
    expect(sizes.Featurize).toBeLessThan(70);
    for (const [name, mb] of Object.entries(sizes)) if (name !== 'Featurize') expect(mb, name).toBeLessThan(15);
  });
});
