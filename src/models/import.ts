/**
 * `textshift models import`: a Hugging Face BERT checkpoint folder (config.json, model.safetensors, tokenizer.json or
 * vocab.txt) becomes the ONNX feature-extraction folder the bert family loads, at `<out>/models/<name>/`. The folder
 * is assembled under a hidden temp name beside its target, checked (the graph against the reference forward pass)
 * and only then renamed into place, so a failed or interrupted import installs nothing. With `quantize: 'int8'` the
 * graph's Linear weights are int8 (bert-onnx.ts) and the check against the float32 reference has looser bounds.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ModelName } from '../config/experiment.js';
import { InvalidDataError, InvalidInputError, MissingInputError } from '../errors/index.js';
import { modelPrefix } from '../run/keys.js';
import { readBertConfig } from './bert-config.js';
import { buildBertOnnx } from './bert-onnx.js';
import { exists, sha256OfFile } from './files.js';
import { readBertWeights } from './bert-weights.js';
import { MODEL_RECORD_FILE, type ModelRecord } from './model-record.js';
import type { Quantization } from './quantize.js';
import { verificationBounds, verifyBertOnnx } from './verify.js';

/** Files copied from the checkpoint folder when present; config.json and one tokenizer file are required. */
const COPIED_FILES = ['config.json', 'tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json'] as const;

/** What to import and where. */
export interface ImportOptions {
  /** The Hugging Face checkpoint folder. */
  folder: string;
  /** Model name: the folder models/<name>/ of the store. */
  name: string;
  /** The local store folder (default out/). */
  out: string;
  /** Where the checkpoint came from, for the record (default: the folder's file:// URL). */
  source?: string;
  /** Replace a model already installed under the name. */
  replace?: boolean;
  /** Write a quantized graph (default: float32). */
  quantize?: Quantization;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** An installed model. */
export interface ImportResult {
  dir: string;
  record: ModelRecord;
  /** Checkpoint tensors that are not part of the encoder (heads, pooler, position_ids). */
  ignored: string[];
}

/** Imports, verifies and installs a checkpoint; throws (installing nothing) on a refused or mismatching model. */
export async function importModel(opts: ImportOptions): Promise<ImportResult> {
  const log = opts.log ?? (() => undefined);
  const parsedName = ModelName.safeParse(opts.name);
  if (!parsedName.success) throw new InvalidInputError(`model name "${opts.name}": ${parsedName.error.issues[0]!.message}`);
  const folder = resolve(opts.folder);
  const target = resolve(opts.out, modelPrefix(opts.name));
  if (!opts.replace && (await exists(target))) {
    throw new InvalidInputError(`${target} already exists: choose another --name, or pass --force to replace it`);
  }
  const { arch, architecture } = await readBertConfig(join(folder, 'config.json'));
  if (!(await exists(join(folder, 'tokenizer.json'))) && !(await exists(join(folder, 'vocab.txt')))) {
    throw new MissingInputError(`${folder}: no tokenizer.json or vocab.txt (the bert family needs one of them)`);
  }
  const safetensors = join(folder, 'model.safetensors');
  log(`${safetensors}: reading ${architecture} (${arch.numLayers} layers, hidden ${arch.hiddenSize}, ${arch.numHeads} heads)`);
  const { weights, ignored } = await readBertWeights(safetensors, arch);
  const onnx = buildBertOnnx(arch, weights, 'textshift models import', opts.quantize ? { quantize: opts.quantize } : {});
  const bounds = verificationBounds(opts.quantize);

  const tmp = join(dirname(target), `.${basename(target)}.partial-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(join(tmp, 'onnx'), { recursive: true });
    for (const file of COPIED_FILES) {
      if (await exists(join(folder, file))) await copyFile(join(folder, file), join(tmp, file));
    }
    await writeFile(join(tmp, 'onnx', 'model.onnx'), onnx);
    log(`verifying the ${opts.quantize ?? 'float32'} ONNX graph against the float32 reference forward pass`);
    const check = await verifyBertOnnx(tmp, arch, weights);
    if (!(check.maxAbsDiff <= bounds.maxAbsDiff) || !(check.minCosine >= bounds.minCosine)) {
      throw new InvalidDataError(
        `${safetensors}: the ${opts.quantize ?? 'float32'} ONNX graph differs from the reference forward pass by ${check.maxAbsDiff} (max abs, ` +
          `over ${check.values} values; limit ${bounds.maxAbsDiff}), min cosine similarity of a token's hidden state ${check.minCosine} ` +
          `(limit ${bounds.minCosine}); nothing was installed`,
      );
    }
    const record: ModelRecord = {
      format: 1,
      name: opts.name,
      architecture,
      dims: {
        hidden: arch.hiddenSize,
        layers: arch.numLayers,
        heads: arch.numHeads,
        intermediate: arch.intermediateSize,
        vocab: arch.vocabSize,
        maxPositions: arch.maxPositions,
      },
      source: opts.source ?? pathToFileURL(folder).href,
      sha256: { 'model.safetensors': await sha256OfFile(safetensors), 'onnx/model.onnx': createHash('sha256').update(onnx).digest('hex') },
      ...(opts.quantize ? { quantization: opts.quantize } : {}),
      verification: {
        maxAbsDiff: check.maxAbsDiff,
        tolerance: bounds.maxAbsDiff,
        minCosine: check.minCosine,
        minCosineBound: bounds.minCosine,
        sequences: check.sequences,
      },
      importedAt: new Date().toISOString(),
    };
    await writeFile(join(tmp, MODEL_RECORD_FILE), `${JSON.stringify(record, null, 2)}\n`);
    await install(tmp, target);
    return { dir: target, record, ignored };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Renames the finished folder into place; a model it replaces is moved aside first and removed after. */
async function install(tmp: string, target: string): Promise<void> {
  const old = `${tmp}.replaced`;
  const replacing = await exists(target);
  if (replacing) await rename(target, old);
  await rename(tmp, target);
  if (replacing) await rm(old, { recursive: true, force: true });
}
