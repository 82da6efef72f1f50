import type { Experiment } from '../config/experiment.js';
import { modelPrefix } from '../run/keys.js';
import type { BlobStore } from '../store/blob-store.js';
import { MissingInputError } from '../errors/index.js';

/**
 * The one place a local run makes sure a BERT-family model is in the store before it spends time on Prepare.
 * Fetching a missing model on first use belongs here (once `textshift models fetch` exists); until then a missing
 * model fails the run, saying how to provide the model or leave its families out.
 */
export async function ensureModel(store: BlobStore, name: string, families: readonly string[]): Promise<void> {
  const key = `${modelPrefix(name)}onnx/model.onnx`;
  if ((await store.head(key)) !== undefined) return;
  throw new MissingInputError(
    `${store.url}/${key} not found: feature ${families.length === 1 ? 'family' : 'families'} ${families.join(', ')} ` +
      `encode with the BERT-family model "${name}", which textshift does not download yet. Put its ONNX ` +
      `feature-extraction folder (onnx/model.onnx, config.json, tokenizer.json or vocab.txt) at ${store.url}/${modelPrefix(name)} ` +
      '(README, "Feature families", shows how to export one), or run without the BERT-family families: ' +
      'experiments/sst2-imdb-use.json is the seed lab with USE-lite, which needs no model file.',
  );
}

/** `ensureModel` for every model the experiment's BERT-family families use. */
export async function ensureModels(store: BlobStore, exp: Experiment): Promise<void> {
  const families = new Map<string, string[]>();
  for (const [family, spec] of Object.entries(exp.features)) {
    if (spec.kind === 'bert') families.set(spec.model, [...(families.get(spec.model) ?? []), family]);
  }
  for (const [model, users] of families) await ensureModel(store, model, users);
}
