/**
 * A run reads the inputs it started with. The experiment file and every dataset file are pinned the first time Prepare
 * resolves them: in a versioned bucket by VersionId (later reads ask S3 for exactly that version), in a folder (or an
 * unversioned bucket) by sha256 (later reads first check that the file still has it). So an edit after the upload,
 * a second quick upload of the same key, or a file changed before a redrive or a resume never mixes into a run.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { BlobStore, ReadOptions } from '../store/blob-store.js';
import { NotFoundError } from '../store/blob-store.js';
import { findManifest, updateManifest, type Manifest } from '../run/manifest.js';
import type { InputPin, LoadedFile } from '../run/records.js';
import { displayName } from '../data/errors.js';
import { InvalidDataError, InvalidInputError } from '../errors/index.js';

/** An input whose bytes are no longer the ones the run pinned (a folder or an unversioned bucket: no older version to read). */
export class InputChangedError extends InvalidDataError {}

/** What reading the run's experiment file gave: its text and what pins it. */
export interface ExperimentRead {
  text: string;
  sha256: string;
  version?: string;
  etag?: string;
}

const sha256Of = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The advice every changed-input error ends with. */
const RESTORE = 'a run only ever reads the inputs it started with: restore the file, or start a new run (a new run id)';

/**
 * Reads the run's experiment file: at the version the run pinned (`pinned`: a resumed, retried or redriven run), else
 * at the version the upload event named (`version`), else the current object, whose version (if the store keeps
 * versions) the caller then records. Where the run pinned no version, the bytes must still have its sha256.
 */
export async function readExperiment(
  store: BlobStore,
  key: string,
  options: { pinned?: Manifest['experiment']; version?: string; runId?: string },
): Promise<ExperimentRead> {
  if (options.pinned && options.pinned.key !== key) {
    throw new InvalidInputError(`run ${options.runId ?? '?'} runs ${options.pinned.key}, not ${key}: resume it with its own experiment, or start a new run`);
  }
  const version = options.pinned?.version ?? options.version;
  const read = await store.getWithInfo(key, version === undefined ? {} : { version });
  if (!read) throw new NotFoundError(store.url, key);
  const sha256 = sha256Of(read.body);
  if (options.pinned && options.pinned.sha256 !== sha256) {
    throw new InputChangedError(
      `${displayName(store, key)} changed after run ${options.runId ?? '?'} started (sha256 ${options.pinned.sha256} then, ${sha256} now); ${RESTORE}`,
    );
  }
  const { etag } = read.info;
  return {
    text: read.body.toString('utf8'),
    sha256,
    ...(read.info.version === undefined ? {} : { version: read.info.version }),
    ...(etag === undefined ? {} : { etag }),
  };
}

/**
 * Refuses, before anything is written, a local start that names existing run `runId` with another experiment than
 * the one it pinned (another key, or other bytes): the run stays exactly as it is. `file` is the user's file; `named`,
 * whether the user named the run (--run-id) rather than letting it be derived from the content.
 */
export async function refuseOtherExperiment(store: BlobStore, runId: string, key: string, body: Uint8Array, file: string, named: boolean): Promise<void> {
  const existing = (await findManifest(store, runId))?.experiment;
  if (!existing) return;
  const sha256 = sha256Of(body);
  if (existing.key === key && existing.sha256 === sha256) return;
  const what = existing.key === key ? `other bytes of ${key} (sha256 ${existing.sha256}; ${file} has ${sha256})` : `${existing.key}, not ${key}`;
  const fix = named
    ? `To run this experiment, leave out --run-id (the run id is then derived from the file's content)`
    : 'To run this experiment as a run of its own, give it a new --run-id';
  throw new InputChangedError(
    `${file}: run ${runId}${named ? ' (--run-id)' : ''} was started from ${what}; it is left as it is. ` +
      `${fix}; to resume ${runId}, run it with the experiment it started from.`,
  );
}

/** sha256 of a stored object, streamed (datasets can be larger than memory). */
async function hashObject(store: BlobStore, key: string, options: ReadOptions = {}): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of (await store.getStream(key, options)) as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest('hex');
}

/** The pin of a stored object as it is now (its version, else its sha256), or undefined when it does not exist. */
export async function pinOf(data: BlobStore, key: string): Promise<InputPin | undefined> {
  const info = await data.head(key);
  if (!info) return undefined;
  const pin: InputPin = { bytes: info.size, ...(info.etag === undefined ? {} : { etag: info.etag }) };
  if (info.version !== undefined) pin.version = info.version;
  else pin.sha256 = await hashObject(data, key);
  return pin;
}

/**
 * The pins of the run's dataset files: those the run's manifest already holds, plus, for keys not pinned yet, the current
 * object (its version, etag and size; its sha256 where the store keeps no versions), recorded in the manifest before
 * anything reads them. A concurrent Prepare that pinned a key first wins. Missing files are left unpinned (reading
 * them fails naming every path tried).
 */
export async function pinDatasets(data: BlobStore, store: BlobStore, manifest: Manifest, keys: string[]): Promise<Record<string, InputPin>> {
  const current = manifest.pinned ?? {};
  const fresh: Record<string, InputPin> = {};
  for (const key of keys) {
    if (current[key] || fresh[key]) continue;
    const pin = await pinOf(data, key);
    if (pin) fresh[key] = pin;
  }
  if (Object.keys(fresh).length === 0) return current;
  const m = await updateManifest(store, manifest.runId, (m) => {
    m.pinned = { ...fresh, ...m.pinned };
  });
  return m.pinned ?? {};
}

/** Checks that an unversioned input still has its pinned bytes: an unchanged etag says so cheaply, else its sha256. */
export async function checkUnchanged(data: BlobStore, key: string, pin: InputPin, runId: string): Promise<void> {
  const info = await data.head(key);
  // A missing file fails in the reader, which names every path tried.
  if (!info || (pin.etag !== undefined && info.etag === pin.etag) || pin.sha256 === undefined) return;
  const now = await hashObject(data, key);
  if (now !== pin.sha256) {
    throw new InputChangedError(`${displayName(data, key)} changed after run ${runId} pinned it (sha256 ${pin.sha256} then, ${now} now); ${RESTORE}`);
  }
}

/** Checks that every input pinned by sha256 (a folder, an unversioned bucket) still has it: a prepared run's inputs stay its own. */
export async function checkPinned(data: BlobStore, pins: Record<string, InputPin>, runId: string): Promise<void> {
  for (const [key, pin] of Object.entries(pins)) if (pin.version === undefined) await checkUnchanged(data, key, pin, runId);
}

/**
 * The data store as the run must see it: a read of a pinned key returns its pinned version (by VersionId), or is
 * refused with InputChangedError when a file without versions no longer has its pinned sha256. Writes pass through.
 */
export function pinnedStore(data: BlobStore, pins: Record<string, InputPin>, runId: string): BlobStore {
  const at = async (key: string, options: ReadOptions | undefined): Promise<ReadOptions> => {
    const pin = pins[key];
    if (options?.version !== undefined || !pin) return options ?? {};
    if (pin.version !== undefined) return { version: pin.version };
    await checkUnchanged(data, key, pin, runId);
    return {};
  };
  const localPath = data.localPath?.bind(data);
  return {
    url: data.url,
    get: async (key, options) => data.get(key, await at(key, options)),
    getOrThrow: async (key, options) => data.getOrThrow(key, await at(key, options)),
    getStream: async (key, options): Promise<Readable> => data.getStream(key, await at(key, options)),
    getWithInfo: async (key, options) => data.getWithInfo(key, await at(key, options)),
    put: (key, body, condition) => data.put(key, body, condition),
    putStream: (key, body, options) => data.putStream(key, body, options),
    head: (key) => data.head(key),
    list: (prefix) => data.list(prefix),
    delete: (key) => data.delete(key),
    touch: (key) => data.touch(key),
    ...(localPath ? { localPath } : {}),
  };
}

/**
 * The manifest's record of one file as read, with the version and etag it was pinned at. A file whose sha256 as read
 * is not the pinned one changed while it was being read: refused like any other change.
 */
export function pinnedRecord(file: LoadedFile, pins: Record<string, InputPin>, data: BlobStore, runId: string): LoadedFile {
  const pin = pins[file.key];
  if (!pin) return file;
  if (pin.sha256 !== undefined && pin.sha256 !== file.sha256) {
    throw new InputChangedError(`${displayName(data, file.key)} changed while run ${runId} read it (sha256 ${pin.sha256} pinned, ${file.sha256} read); ${RESTORE}`);
  }
  return { ...file, ...(pin.version === undefined ? {} : { version: pin.version }), ...(pin.etag === undefined ? {} : { etag: pin.etag }) };
}
