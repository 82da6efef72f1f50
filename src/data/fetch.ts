/**
 * `textshift data fetch`: downloads SST-2 and aclImdb from their public sources and writes them in the
 * formats of shared/data/README.md, checked against that README's sha256s. Outputs appear only complete
 * (temp name + rename) and files already present with the right content are not fetched again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable, Transform, type Writable, pipeline as pipelineCb } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGunzip, createGzip } from 'node:zlib';
import { convertAclImdb } from './imdb-convert.js';
import { httpStatusError, networkError } from '../errors/classify.js';
import { InvalidInputError, MissingInputError } from '../errors/index.js';
import { redact, redactUrl } from '../errors/redact.js';

/** Fetched contents, named by their uncompressed file (the IMDB ones are stored gzipped). */
export type FetchedFile = 'sst2/train.tsv' | 'sst2/dev.tsv' | 'sst2/test.tsv' | 'imdb.csv' | 'imdb_index.csv';

/** Where the data comes from and what its converted bytes must hash to. */
export interface DatasetSources {
  /** Folder URL holding `train.tsv`, `dev.tsv`, `test.tsv` (http(s) or file:). */
  sst2BaseUrl: string;
  /** URL of `aclImdb_v1.tar.gz` (http(s) or file:). */
  imdbUrl: string;
  /** Expected sha256 of each output's uncompressed bytes. */
  sha256: Record<FetchedFile, string>;
}

/** Partial sources for mirrors and tests; unset fields fall back to env vars, then the public defaults. */
export interface DatasetSourceOverrides {
  sst2BaseUrl?: string;
  imdbUrl?: string;
  sha256?: Partial<Record<FetchedFile, string>>;
}

/** The public sources named in shared/data/README.md and that README's checksums. */
export const DEFAULT_SOURCES: DatasetSources = {
  sst2BaseUrl:
    'https://raw.githubusercontent.com/clairett/pytorch-sentiment-classification/457ffd83de90a9d6d472d8ffc31bbffe40a8b236/data/SST2/',
  imdbUrl: 'https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz',
  sha256: {
    'sst2/train.tsv': '4bdc38ba1cf151a802f72b0ba750d22404ad7103b6597b8c39b875a9f28f0b9c',
    'sst2/dev.tsv': '5a6e516ec8c2ece1c86fe5c2877de566d35cd4b364395382a790c222cfd49915',
    'sst2/test.tsv': 'c204bc7652500e47fab2711fbebdf87f7491ec6aad8a2b806346f7d53f4634e0',
    'imdb.csv': '5e712009645cd5c83dd5e6ec08c345b694d1b306954e82a458648871e56c5d2a',
    // The README's index with its dax44_AMLM_path column left empty (see imdb-convert.ts); checked by
    // test/unit/data/fetch-reconstruct.test.ts, which rebuilds the real archive.
    'imdb_index.csv': '2ec3cd1687dc75633e9591a2a8d3c0a816a3de835512f85bc6f3061ddbe6daaa',
  },
};

/**
 * The README's own imdb_index.csv (with dax44_AMLM_path filled in). A copy of shared/data is accepted as
 * present rather than re-downloaded just to blank that column.
 */
const SHARED_INDEX_SHA256 = 'e2677814193e1714187c59a48640dc284918df76e04f8c64d43ae87c21c0d5fb';

/** Environment variables that override the source URLs. */
export const SOURCE_ENV_VARS = { sst2BaseUrl: 'TEXTSHIFT_SST2_BASE_URL', imdbUrl: 'TEXTSHIFT_IMDB_URL' } as const;

const SST2_SPLITS = ['train', 'dev', 'test'] as const;

/** Effective sources: explicit overrides first, then the env vars, then DEFAULT_SOURCES. */
export function resolveSources(overrides: DatasetSourceOverrides = {}, env: NodeJS.ProcessEnv = process.env): DatasetSources {
  return {
    sst2BaseUrl: overrides.sst2BaseUrl ?? (env[SOURCE_ENV_VARS.sst2BaseUrl] || DEFAULT_SOURCES.sst2BaseUrl),
    imdbUrl: overrides.imdbUrl ?? (env[SOURCE_ENV_VARS.imdbUrl] || DEFAULT_SOURCES.imdbUrl),
    sha256: { ...DEFAULT_SOURCES.sha256, ...overrides.sha256 },
  };
}

export interface FetchDatasetsOptions {
  /** Output folder; gets `sst2/{train,dev,test}.tsv`, `imdb.csv.gz`, `imdb_index.csv.gz`. */
  dest: string;
  sources?: DatasetSourceOverrides;
  /** Progress lines (bytes, review counts, skips). */
  log?: (line: string) => void;
  /** Where the URL env vars are read; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

/** One output file and what happened to it. */
export interface FetchedOutput {
  file: FetchedFile;
  /** Absolute path on disk (`.gz` for the IMDB files). */
  path: string;
  /** sha256 of the uncompressed content, equal to the expected one. */
  sha256: string;
  action: 'downloaded' | 'already present';
}

/** Downloads, converts and verifies both datasets into `dest`; throws naming the URL and both hashes on a mismatch. */
export async function fetchDatasets(opts: FetchDatasetsOptions): Promise<FetchedOutput[]> {
  const sources = resolveSources(opts.sources, opts.env ?? process.env);
  const log = opts.log ?? (() => undefined);
  const dest = resolve(opts.dest);
  await mkdir(join(dest, 'sst2'), { recursive: true });
  const outputs: FetchedOutput[] = [];
  for (const split of SST2_SPLITS) outputs.push(await fetchSst2Split(dest, split, sources, log));
  outputs.push(...(await fetchImdb(dest, sources, log)));
  return outputs;
}

async function fetchSst2Split(
  dest: string,
  split: (typeof SST2_SPLITS)[number],
  sources: DatasetSources,
  log: (line: string) => void,
): Promise<FetchedOutput> {
  const file: FetchedFile = `sst2/${split}.tsv`;
  const path = join(dest, file);
  const expected = sources.sha256[file];
  if ((await sha256OfFile(path)) === expected) {
    log(`${file}: already present, sha256 ok`);
    return { file, path, sha256: expected, action: 'already present' };
  }
  const url = joinUrl(sources.sst2BaseUrl, `${split}.tsv`);
  const body = await downloadToBuffer(url);
  // Upstream files lack a final newline; the README format has one. A mirror that already has it is left as is.
  const data = body.at(-1) === 0x0a ? body : Buffer.concat([body, Buffer.from('\n')]);
  const actual = sha256(data);
  if (actual !== expected) throw checksumError(file, url, expected, actual);
  await writeFileAtomic(path, data);
  log(`${file}: downloaded ${formatBytes(body.length)} from ${redactUrl(url)}, sha256 ok`);
  return { file, path, sha256: actual, action: 'downloaded' };
}

async function fetchImdb(dest: string, sources: DatasetSources, log: (line: string) => void): Promise<FetchedOutput[]> {
  const targets = [
    { file: 'imdb.csv' as const, path: join(dest, 'imdb.csv.gz') },
    { file: 'imdb_index.csv' as const, path: join(dest, 'imdb_index.csv.gz') },
  ];
  const present = await Promise.all(targets.map((t) => sha256OfGzipFile(t.path)));
  const accepted = (file: FetchedFile, sha: string | null) =>
    sha === sources.sha256[file] || (file === 'imdb_index.csv' && sha === SHARED_INDEX_SHA256);
  if (targets.every((t, i) => accepted(t.file, present[i]!))) {
    log('imdb.csv.gz, imdb_index.csv.gz: already present, sha256 ok');
    return targets.map((t, i) => ({ ...t, sha256: present[i]!, action: 'already present' as const }));
  }

  const url = sources.imdbUrl;
  log(`imdb: downloading ${redactUrl(url)}`);
  const { stream, size } = await openSource(url);
  const spillPath = tempPathFor(join(dest, 'imdb-reviews.spill'));
  const outs = targets.map((t) => ({ ...t, writer: gzipHashingWriter(tempPathFor(t.path)) }));
  try {
    const archive = pipelineCb(stream, progressTap(size, log), () => undefined);
    const summary = await convertAclImdb(
      archive,
      { csv: outs[0]!.writer.input, index: outs[1]!.writer.input },
      { spillPath, log, sourceName: redactUrl(url) },
    );
    const hashes = await Promise.all(outs.map((o) => o.writer.done));
    outs.forEach((o, i) => {
      if (hashes[i] !== sources.sha256[o.file]) throw checksumError(o.file, url, sources.sha256[o.file], hashes[i]!);
    });
    // Index first: the CSV is what readers look for, so it appears last, once both are complete.
    for (const o of [...outs].reverse()) await rename(o.writer.path, o.path);
    const c = summary.counts;
    log(
      `imdb.csv.gz: ${summary.rows.toLocaleString('en-US')} rows (train ${c.train.negative}/${c.train.positive}, ` +
        `test ${c.test.negative}/${c.test.positive} negative/positive), sha256 ok`,
    );
    return outs.map((o, i) => ({ file: o.file, path: o.path, sha256: hashes[i]!, action: 'downloaded' as const }));
  } catch (err) {
    stream.destroy();
    for (const o of outs) o.writer.input.destroy();
    await Promise.allSettled(outs.map((o) => o.writer.done));
    throw err;
  } finally {
    await Promise.all([spillPath, ...outs.map((o) => o.writer.path)].map((p) => rm(p, { force: true })));
  }
}

/** Opens a source URL as a byte stream; `size` is the announced length when known. */
async function openSource(url: string): Promise<{ stream: Readable; size?: number }> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidInputError(`invalid source URL "${redactUrl(url)}" (expected http://, https:// or file://)`);
  }
  if (parsed.protocol === 'file:') {
    const path = fileURLToPath(parsed);
    const info = await stat(path).catch(() => {
      throw new MissingInputError(`${redactUrl(url)}: file not found`);
    });
    return { stream: createReadStream(path), size: info.size };
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidInputError(`unsupported source URL "${redactUrl(url)}" (expected http://, https:// or file://)`);
  }
  let res: Response;
  try {
    res = await fetch(parsed);
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw networkError(`GET ${redactUrl(url)} failed: ${redact(cause ?? (err as Error).message)}`, err);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw httpStatusError(`GET ${redactUrl(url)} failed: HTTP ${res.status} ${res.statusText}`, res.status);
  }
  const length = Number(res.headers.get('content-length'));
  return {
    stream: Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
    size: Number.isFinite(length) && length > 0 ? length : undefined,
  };
}

async function downloadToBuffer(url: string): Promise<Buffer> {
  const { stream } = await openSource(url);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk as Buffer);
  } catch (err) {
    throw networkError(`GET ${redactUrl(url)} failed while reading: ${redact((err as Error).message)}`, err);
  }
  return Buffer.concat(chunks);
}

/** Passes bytes through, logging download progress every ~10% (or every 8 MiB when the size is unknown). */
function progressTap(size: number | undefined, log: (line: string) => void): Transform {
  const step = size ? Math.max(Math.ceil(size / 10), 1 << 20) : 8 << 20;
  let seen = 0;
  let next = step;
  const total = size ? ` of ${formatBytes(size)}` : '';
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen >= next && (!size || seen < size)) {
        log(`imdb: downloaded ${formatBytes(seen)}${total}`);
        next = seen + step;
      }
      cb(null, chunk);
    },
    flush(cb) {
      log(`imdb: downloaded ${formatBytes(seen)}, converting`);
      cb();
    },
  });
}

/** A writable that hashes what it is given (uncompressed) and gzips it into `path`; `done` yields the sha256. */
function gzipHashingWriter(path: string): { input: Writable; path: string; done: Promise<string> } {
  const hash = createHash('sha256');
  const input = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  const done = pipeline(input, createGzip(), createWriteStream(path)).then(() => hash.digest('hex'));
  // Marked handled so an early failure elsewhere is not an unhandled rejection; awaiting `done` still throws.
  done.catch(() => undefined);
  return { input, path, done };
}

async function sha256OfFile(path: string): Promise<string | null> {
  try {
    return sha256(await readFile(path));
  } catch {
    return null;
  }
}

/** sha256 of a gzip file's uncompressed bytes; null when it is missing or not valid gzip (so it is rebuilt). */
async function sha256OfGzipFile(path: string): Promise<string | null> {
  const hash = createHash('sha256');
  try {
    await pipeline(createReadStream(path), createGunzip(), async (chunks: AsyncIterable<Buffer>) => {
      for await (const chunk of chunks) hash.update(chunk);
    });
  } catch {
    return null;
  }
  return hash.digest('hex');
}

async function writeFileAtomic(path: string, data: Buffer): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** A hidden sibling name unique to this process, so a crash never leaves a plausible-looking output. */
function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
}

function checksumError(file: FetchedFile, url: string, expected: string, actual: string): Error {
  return new Error(
    `${file} from ${redactUrl(url)} has the wrong sha256: expected ${expected}, got ${actual}. ` +
      'The download is corrupt or the source changed; nothing was written.',
  );
}

function joinUrl(base: string, name: string): string {
  return base.endsWith('/') ? base + name : `${base}/${name}`;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${n.toLocaleString('en-US')} bytes`;
}
