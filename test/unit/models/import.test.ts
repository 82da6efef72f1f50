import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTestCheckpoint } from '../../../scripts/onnx/test-model.js';
import { BertEncoder } from '../../../src/features/bert/encoder.js';
import { importModel } from '../../../src/models/import.js';
import { listModels, readModelRecord } from '../../../src/models/model-record.js';
import { sha256OfFile } from '../../../src/models/files.js';

const SIZE = { layers: 2, hidden: 32, heads: 4, intermediate: 64 };
const TEXTS = ['Hello world!', 'Café naïve — a film that never quite works.', 'no'];
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'models-import-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A fresh checkpoint folder and store folder for one test. */
async function scratch(label: string): Promise<{ ckpt: string; out: string }> {
  const base = await mkdtemp(join(dir, `${label}-`));
  return { ckpt: join(base, 'ckpt'), out: join(base, 'out') };
}

/** Mean-pooled embeddings of TEXTS with an installed model. */
async function embed(modelDir: string): Promise<Float32Array> {
  const encoder = await BertEncoder.load(modelDir, { threads: 1 });
  try {
    return (await encoder.encode(TEXTS, { poolings: ['mean'] })).embeddings.mean;
  } finally {
    await encoder.close();
  }
}

describe('models import', () => {
  it('turns a BertModel checkpoint into the folder the bert family loads, verified and recorded', async () => {
    const { ckpt, out } = await scratch('plain');
    await writeTestCheckpoint(ckpt, SIZE, 7);
    const result = await importModel({ folder: ckpt, name: 'tiny', out });
    expect(result.dir).toBe(join(out, 'models', 'tiny'));
    expect((await readdir(result.dir)).sort()).toEqual(['config.json', 'onnx', 'textshift-model.json', 'vocab.txt']);
    const record = await readModelRecord(result.dir);
    expect(record).toMatchObject({
      name: 'tiny',
      architecture: 'BertModel',
      dims: { hidden: 32, layers: 2, heads: 4, intermediate: 64, vocab: 30522, maxPositions: 512 },
      sha256: { 'model.safetensors': await sha256OfFile(join(ckpt, 'model.safetensors')), 'onnx/model.onnx': await sha256OfFile(join(result.dir, 'onnx', 'model.onnx')) },
      verification: { tolerance: 1e-4, sequences: 3 },
    });
    expect(record.source).toMatch(/^file:\/\/.*\/ckpt$/);
    expect(record.verification.maxAbsDiff).toBeLessThan(1e-5);
    expect(result.ignored).toEqual([]);
    expect((await embed(result.dir)).every(Number.isFinite)).toBe(true);
    // Only the installed model, no temp folder beside it.
    expect(await readdir(join(out, 'models'))).toEqual(['tiny']);
  });

  it('takes the encoder of a BertFor* checkpoint (bert. prefix) and ignores its head and pooler', async () => {
    const plain = await scratch('plain-ref');
    await writeTestCheckpoint(plain.ckpt, SIZE, 3);
    const a = await importModel({ folder: plain.ckpt, name: 'enc', out: plain.out });
    const head = await scratch('head');
    await writeTestCheckpoint(head.ckpt, SIZE, 3, {
      prefix: 'bert.',
      config: { architectures: ['BertForSequenceClassification'] },
      extra: {
        'classifier.weight': { shape: [2, 32], data: new Float32Array(64).fill(0.5) },
        'classifier.bias': { shape: [2], data: new Float32Array(2) },
        'bert.pooler.dense.weight': { shape: [32, 32], data: new Float32Array(1024) },
      },
    });
    const b = await importModel({ folder: head.ckpt, name: 'org/classifier', out: head.out });
    expect(b.dir).toBe(join(head.out, 'models', 'org', 'classifier'));
    expect(b.record.architecture).toBe('BertForSequenceClassification');
    expect(b.ignored.sort()).toEqual(['bert.pooler.dense.weight', 'classifier.bias', 'classifier.weight']);
    // Same encoder weights, same graph byte for byte.
    expect(b.record.sha256['onnx/model.onnx']).toBe(a.record.sha256['onnx/model.onnx']);
  });

  it("uses the config's layer_norm_eps in the graph (and the reference agrees)", async () => {
    const small = await scratch('eps-small');
    await writeTestCheckpoint(small.ckpt, SIZE, 5);
    const large = await scratch('eps-large');
    // Random embeddings have variance ~1e-3: an epsilon of 1e-2 changes every LayerNorm visibly.
    await writeTestCheckpoint(large.ckpt, SIZE, 5, { config: { layer_norm_eps: 1e-2 } });
    const a = await importModel({ folder: small.ckpt, name: 'm', out: small.out });
    const b = await importModel({ folder: large.ckpt, name: 'm', out: large.out });
    expect(b.record.verification.maxAbsDiff).toBeLessThan(1e-5);
    const [ea, eb] = [await embed(a.dir), await embed(b.dir)];
    expect(Math.max(...ea.map((x, i) => Math.abs(x - eb[i]!)))).toBeGreaterThan(1e-2);
  });

  it('refuses to overwrite an installed model unless told to replace it', async () => {
    const { ckpt, out } = await scratch('replace');
    await writeTestCheckpoint(ckpt, SIZE, 1);
    const first = await importModel({ folder: ckpt, name: 'm', out });
    await expect(importModel({ folder: ckpt, name: 'm', out })).rejects.toThrow(/models\/m already exists: choose another --name, or pass --force/);
    await writeTestCheckpoint(ckpt, SIZE, 2);
    const second = await importModel({ folder: ckpt, name: 'm', out, replace: true });
    expect(second.record.sha256['onnx/model.onnx']).not.toBe(first.record.sha256['onnx/model.onnx']);
    expect((await readModelRecord(second.dir)).sha256).toEqual(second.record.sha256);
    expect(await readdir(join(out, 'models'))).toEqual(['m']);
  });

  it('lists installed models from their records', async () => {
    const { ckpt, out } = await scratch('list');
    expect(await listModels(out)).toEqual([]);
    await writeTestCheckpoint(ckpt, SIZE, 1);
    await importModel({ folder: ckpt, name: 'zeta', out });
    await importModel({ folder: ckpt, name: 'org/alpha', out, source: 'pypi:example==1.0' });
    const models = await listModels(out);
    expect(models.map((m) => [m.record.name, m.record.source])).toEqual([
      ['org/alpha', 'pypi:example==1.0'],
      ['zeta', expect.stringMatching(/^file:/)],
    ]);
    const onnxBytes = (await readFile(join(out, 'models', 'zeta', 'onnx', 'model.onnx'))).length;
    expect(models[1]!.bytes).toBeGreaterThan(onnxBytes);
  });
});

describe('models import refusals (nothing installed)', () => {
  const refused = async (label: string, options: Parameters<typeof writeTestCheckpoint>[3], message: RegExp) => {
    const { ckpt, out } = await scratch(label);
    await writeTestCheckpoint(ckpt, SIZE, 1, options);
    await expect(importModel({ folder: ckpt, name: 'm', out })).rejects.toThrow(message);
    expect(await readdir(join(out, 'models')).catch(() => [])).toEqual([]);
  };

  it('another architecture, named with what was found and the file', async () => {
    await refused('roberta', { config: { model_type: 'roberta', architectures: ['RobertaModel'] } }, /ckpt\/config\.json: model_type is "roberta", expected "bert"/);
    await refused('arch', { config: { architectures: ['DistilBertModel'] } }, /config\.json: architectures is \["DistilBertModel"\], expected BertModel or a BertFor\* head/);
  });

  it('a GELU other than the exact erf form', async () => {
    await refused('gelu', { config: { hidden_act: 'gelu_new' } }, /config\.json: hidden_act is "gelu_new", expected "gelu" \(exact erf GELU\)/);
  });

  it('relative position embeddings', async () => {
    await refused('relative', { config: { position_embedding_type: 'relative_key' } }, /config\.json: position_embedding_type is "relative_key", expected "absolute"/);
  });

  it('a checkpoint that lacks an encoder tensor or has one of the wrong shape', async () => {
    await refused('missing', { edit: (w) => w.delete('encoder.layer.1.output.dense.bias') }, /model\.safetensors: lacks BERT encoder tensors encoder\.layer\.1\.output\.dense\.bias/);
    await refused('shape', { config: { intermediate_size: 48 } }, /tensor encoder\.layer\.0\.intermediate\.dense\.weight has shape \[64, 32\], expected \[48, 32\] from config\.json/);
  });

  it('a graph that does not match the reference (NaN weights) fails verification', async () => {
    await refused('nan', { edit: (w) => w.get('encoder.layer.0.output.dense.weight')!.fill(NaN) }, /differs from the reference forward pass by Infinity .* nothing was installed/);
  });

  it('a name an experiment could not use', async () => {
    const { ckpt, out } = await scratch('badname');
    await writeTestCheckpoint(ckpt, SIZE, 1);
    await expect(importModel({ folder: ckpt, name: '../escape', out })).rejects.toThrow(/model name "\.\.\/escape": expected letters, digits/);
  });
});
