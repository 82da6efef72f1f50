/**
 * `textshift models push NAME --to <store>`: copies an installed model folder to another store (an S3 bucket the
 * Featurize Lambdas read, or a folder) under the same key, `models/<name>/`. onnx/model.onnx goes last: readers
 * take a model folder as present once its graph is there, so they never see one without its config or tokenizer.
 */
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { MissingInputError } from '../errors/index.js';
import { modelPrefix } from '../run/keys.js';
import type { Reporter } from '../run/reporter.js';
import type { BlobStore } from '../store/blob-store.js';
import { exists } from './files.js';
import { MODEL_RECORD_FILE } from './model-record.js';

/** Uploads `<out>/models/<name>/` to `store`; returns the keys written, in order. */
export async function pushModel(out: string, name: string, store: BlobStore, reporter: Reporter): Promise<string[]> {
  const prefix = modelPrefix(name);
  const dir = join(out, ...prefix.split('/').filter(Boolean));
  if (!(await exists(join(dir, MODEL_RECORD_FILE)))) {
    throw new MissingInputError(`${dir}: no installed model (textshift-model.json missing); see textshift models list --out ${out}`);
  }
  const files = (await readdir(dir, { withFileTypes: true, recursive: true }))
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort((a, b) => Number(a === 'onnx/model.onnx') - Number(b === 'onnx/model.onnx') || a.localeCompare(b));
  const task = reporter.task(`push ${name}`, files.length, 'files');
  const keys: string[] = [];
  for (const file of files) {
    const key = `${prefix}${file}`;
    await store.putStream(key, createReadStream(join(dir, ...file.split('/'))));
    keys.push(key);
    task.tick();
  }
  task.done();
  return keys;
}
