/**
 * A run encodes with the model files it started with. Prepare pins every BERT-family model folder the experiment uses
 * as it pins dataset files (pinned-inputs.ts): each file the vectors depend on (onnx/model.onnx, config.json, the
 * tokenizer files) by VersionId in a versioned bucket, else by sha256. Featurize sees the run store through
 * pinnedModelStore, so a model uploaded again while the run is under way is read at the run's versions, or (a folder,
 * an unversioned bucket: no older version to read) refused, never mixed: one encoder per run.
 */
import type { Experiment } from '../config/experiment.js';
import { definesOutputs } from '../features/bert/model-files.js';
import { PREFIXES, modelPrefix } from '../run/keys.js';
import { updateManifest, type Manifest } from '../run/manifest.js';
import type { InputPin } from '../run/records.js';
import type { BlobInfo, BlobStore } from '../store/blob-store.js';
import { displayName } from '../data/errors.js';
import { MissingInputError } from '../errors/index.js';
import { InputChangedError, checkUnchanged, pinOf, pinnedStore } from './pinned-inputs.js';

/** The pinned keys under a model folder's prefix, sorted (a store's listing order). */
const pinnedUnder = (pins: Record<string, InputPin>, prefix: string): string[] =>
  Object.keys(pins)
    .filter((k) => k.startsWith(prefix))
    .sort();

/** The model folder (`models/<name>/`) of a pinned model file's key. */
const folderOf = (key: string): string => modelPrefix(key.slice(PREFIXES.models.length).split('/')[0]!);

/** Each model the experiment's BERT-family families encode with, and those families. */
function modelsOf(exp: Experiment): Map<string, string[]> {
  const models = new Map<string, string[]>();
  for (const [family, spec] of Object.entries(exp.features)) {
    if (spec.kind === 'bert') models.set(spec.model, [...(models.get(spec.model) ?? []), family]);
  }
  return models;
}

/**
 * The run's model pins: those its manifest holds, plus every model folder not pinned yet, pinned whole as it is now
 * (a folder is pinned once: a file added to it later is never pinned into the run). A concurrent Prepare that pinned
 * a folder first wins. A model without onnx/model.onnx is refused here, before any compute, naming the file and its
 * families: install it, then resume the run (on AWS, redrive it).
 */
export async function pinModels(store: BlobStore, manifest: Manifest, exp: Experiment): Promise<Record<string, InputPin>> {
  const current = manifest.pinnedModels ?? {};
  const fresh = new Map<string, Record<string, InputPin>>();
  for (const [model, families] of modelsOf(exp)) {
    const prefix = modelPrefix(model);
    if (pinnedUnder(current, prefix).length > 0) continue;
    const pins: Record<string, InputPin> = {};
    for (const { key } of await store.list(prefix)) {
      if (!definesOutputs(key.slice(prefix.length))) continue;
      const pin = await pinOf(store, key);
      if (pin) pins[key] = pin;
    }
    if (!pins[`${prefix}onnx/model.onnx`]) {
      throw new MissingInputError(
        `${store.url}/${prefix}onnx/model.onnx not found: feature ${families.length === 1 ? 'family' : 'families'} ${families.join(', ')} ` +
          `of run ${manifest.runId} ${families.length === 1 ? 'encodes' : 'encode'} with the BERT-family model "${model}". ` +
          'Install it with textshift models fetch or textshift models import ' +
          '(then textshift models push for a bucket), then resume the run',
      );
    }
    fresh.set(prefix, pins);
  }
  if (fresh.size === 0) return current;
  const m = await updateManifest(store, manifest.runId, (m) => {
    const pinned = m.pinnedModels ?? {};
    for (const [prefix, pins] of fresh) if (pinnedUnder(pinned, prefix).length === 0) Object.assign(pinned, pins);
    m.pinnedModels = pinned;
  });
  return m.pinnedModels ?? {};
}

/**
 * Checks that a model folder pinned without versions is still as pinned: no file the vectors depend on changed, went
 * or appeared. A folder store's encoder loads the files in place, not through the store's reads, so this is the check.
 */
async function checkFolder(store: BlobStore, prefix: string, pins: Record<string, InputPin>, runId: string): Promise<void> {
  const now = new Set((await store.list(prefix)).map((o) => o.key).filter((key) => definesOutputs(key.slice(prefix.length))));
  for (const key of now) {
    if (!pins[key]) {
      throw new InputChangedError(
        `${displayName(store, key)} appeared after run ${runId} pinned the model folder ${prefix}, and the encoder would read it; ` +
          'a run only ever reads the inputs it started with: remove the file, or start a new run (a new run id)',
      );
    }
  }
  for (const key of pinnedUnder(pins, prefix)) {
    if (!now.has(key)) {
      throw new InputChangedError(
        `${displayName(store, key)} was removed after run ${runId} pinned it (sha256 ${pins[key]!.sha256 ?? '?'}); ` +
          'a run only ever reads the inputs it started with: restore the file, or start a new run (a new run id)',
      );
    }
    await checkUnchanged(store, key, pins[key]!, runId);
  }
}

/** A pinned file as a listing shows it: what the encoder's identity and a bucket's local copy are keyed by. */
function pinnedInfo(key: string, pin: InputPin): BlobInfo {
  return { key, size: pin.bytes, ...(pin.etag === undefined ? {} : { etag: pin.etag }), ...(pin.version === undefined ? {} : { version: pin.version }) };
}

/**
 * The run store as the run's encoders must see it: a read of a pinned model file returns its pinned version
 * (pinnedStore), and the listing of a pinned model folder is its pinned files, after checking, where they have no
 * versions, that the folder is unchanged (InputChangedError naming the file and the run). The encoder identity (a
 * hash of the files as read) is therefore that of the pinned bytes. Other keys pass through.
 */
export function pinnedModelStore(store: BlobStore, pins: Record<string, InputPin>, runId: string): BlobStore {
  const folders = new Set(Object.keys(pins).map(folderOf));
  return {
    ...pinnedStore(store, pins, runId),
    list: async (prefix) => {
      if (!folders.has(prefix)) return store.list(prefix);
      const keys = pinnedUnder(pins, prefix);
      if (keys.some((key) => pins[key]!.version === undefined)) await checkFolder(store, prefix, pins, runId);
      return keys.map((key) => pinnedInfo(key, pins[key]!));
    },
  };
}
