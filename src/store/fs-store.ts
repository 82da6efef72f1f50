import { createReadStream, createWriteStream, type BigIntStats } from 'node:fs';
import { link, mkdir, open, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  NotFoundError,
  PreconditionFailedError,
  isConditional,
  validateKey,
  type BlobInfo,
  type BlobStore,
  type BlobWithInfo,
  type PutCondition,
  type PutStreamOptions,
  type ReadOptions,
  type StreamReadOptions,
} from './blob-store.js';
import { processAlive, removeIfAbandoned, withWriteLock } from './fs-write-lock.js';
import { InvalidInputError } from '../errors/index.js';

/** Files the store keeps for itself (temp bodies, write locks) end in this; they are never objects. */
const TMP_SUFFIX = '.partial';

/** This host in a temp file's name (a short hash: host names may be long or hold any character). */
const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
/** A temp body's name after its target's: `<target>.<pid>-<host tag>-<random>.partial`, naming its writer. */
const TEMP_NAME = /\.(\d+)-([0-9a-f]{8})-[0-9a-f]{12}\.partial$/;
/**
 * A temp body not written to for this long has no live writer even when its writer cannot be checked (another host,
 * or a name from before temp names carried their writer): a put writes its body without pausing.
 */
const STALE_TEMP_MS = 60 * 60 * 1000;

/** What removeStalePartials removed: store-relative paths and their total size. */
export interface RemovedPartials {
  paths: string[];
  bytes: number;
}

/**
 * Largest write(2) of a streamed put. A checkpoint streams tensors of 20 MB as single chunks, and one write of that
 * size took 3x as long here as the same bytes in 1 MiB writes (63 MB: 110-140 ms against 34-41 ms); writeFile
 * already writes in 512 KiB pieces.
 */
const WRITE_CHUNK = 1 << 20;

/**
 * A folder used as an object store: key `a/b.json` is file `<root>/a/b.json`; writes go to a temp file, flushed to
 * the disk (fsync), then renamed over the key's file, and the folder is flushed so the rename survives a crash too.
 * A writer killed mid-put leaves only its temp file, which names the writer; removeStalePartials clears those.
 * Conditional puts: `ifNoneMatch: '*'` links the temp file to the key's name (link(2) fails when the name exists, and
 * is atomic); `ifMatch` compares the file's etag and renames over it while holding the key's write lock
 * (fs-write-lock.ts), which every conditional put of that key takes. The folder keeps no versions.
 */
export class FsBlobStore implements BlobStore {
  readonly root: string;
  readonly url: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.url = pathToFileURL(this.root).href;
  }

  /** Absolute path of a key (validated, never outside the root). */
  pathOf(key: string): string {
    return join(this.root, ...validateKey(key).split('/'));
  }

  localPath(key: string): string {
    return this.pathOf(key);
  }

  async get(key: string, options?: ReadOptions): Promise<Buffer | undefined> {
    this.refuseVersion(key, options);
    try {
      return await readFile(this.pathOf(key));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async getOrThrow(key: string, options?: ReadOptions): Promise<Buffer> {
    const body = await this.get(key, options);
    if (body === undefined) throw new NotFoundError(this.url, key);
    return body;
  }

  async getStream(key: string, options?: StreamReadOptions): Promise<Readable> {
    this.refuseVersion(key, options);
    if ((await this.head(key)) === undefined) throw new NotFoundError(this.url, key);
    return createReadStream(this.pathOf(key), options?.chunkBytes === undefined ? {} : { highWaterMark: options.chunkBytes });
  }

  async getWithInfo(key: string, options?: ReadOptions): Promise<BlobWithInfo | undefined> {
    this.refuseVersion(key, options);
    let file;
    try {
      file = await open(this.pathOf(key), 'r');
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    try {
      // Stat and read through one descriptor: the etag is that of the bytes read, even if a put replaces the file.
      const s = await file.stat({ bigint: true });
      return { body: await file.readFile(), info: { key, size: Number(s.size), etag: fileTag(s) } };
    } finally {
      await file.close();
    }
  }

  async put(key: string, body: Buffer | Uint8Array | string, condition?: PutCondition): Promise<void> {
    const path = this.pathOf(key);
    const tmp = await this.tempFor(path);
    try {
      await writeFile(tmp, body);
      await flush(tmp);
      if (!isConditional(condition)) await rename(tmp, path);
      else if (condition.ifMatch === undefined) await this.create(key, tmp, path, condition);
      else await withWriteLock(path, TMP_SUFFIX, `${this.url}: ${key}`, () => this.replaceIfMatch(key, tmp, path, condition));
      await flush(dirname(path));
    } finally {
      // After a rename the temp name is gone; after a link it is a second name of the new file.
      await rm(tmp, { force: true });
    }
  }

  /** A file takes any size at once, so the size hint has nothing to choose here. */
  async putStream(key: string, body: Readable, _options?: PutStreamOptions): Promise<void> {
    const path = this.pathOf(key);
    const tmp = await this.tempFor(path);
    try {
      await pipeline(body, splitChunks, createWriteStream(tmp));
      await flush(tmp);
      await rename(tmp, path);
      await flush(dirname(path));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.pathOf(key), { bigint: true });
      return s.isFile() ? { key, size: Number(s.size), etag: fileTag(s) } : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    const out: BlobInfo[] = [];
    // Walk only the deepest folder the prefix names completely.
    const dirPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const start = dirPart ? join(this.root, ...dirPart.split('/')) : this.root;
    await this.walk(start, out);
    return out.filter((b) => b.key.startsWith(prefix)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  /**
   * Removes the temp files under `prefix` that no live writer owns: a temp body whose writer (named in its file name)
   * no longer runs on this host, or that nobody has written to for an hour; a write lock whose holder is gone (as
   * withWriteLock judges it). What a live process is writing stays.
   */
  async removeStalePartials(prefix: string): Promise<RemovedPartials> {
    const removed: RemovedPartials = { paths: [], bytes: 0 };
    const start = join(this.root, ...prefix.split('/').filter((p) => p !== ''));
    for (const file of await partialsUnder(start)) {
      const name = basename(file);
      if (name.includes('.write-lock') || name.includes('.break-lock')) {
        if (await removeIfAbandoned(file)) removed.paths.push(relative(this.root, file).split(sep).join('/'));
        continue;
      }
      const info = await stat(file).catch(() => undefined);
      if (!info) continue;
      const writer = TEMP_NAME.exec(name);
      const deadWriter = writer !== null && writer[2] === HOST_TAG && !processAlive(Number(writer[1]));
      if (!deadWriter && Date.now() - info.mtimeMs < STALE_TEMP_MS) continue;
      await rm(file, { force: true });
      removed.paths.push(relative(this.root, file).split(sep).join('/'));
      removed.bytes += info.size;
    }
    return removed;
  }

  async touch(key: string): Promise<boolean> {
    const now = new Date();
    try {
      await utimes(this.pathOf(key), now, now);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** `ifNoneMatch: '*'`: the temp file gets the key's name only if no file has it (link(2) is atomic and never replaces). */
  private async create(key: string, tmp: string, path: string, condition: PutCondition): Promise<void> {
    try {
      await link(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new PreconditionFailedError(this.url, key, condition, { cause: err });
      throw err;
    }
  }

  /** `ifMatch` (under the key's write lock): replaces the file only if it is still the one with that etag. */
  private async replaceIfMatch(key: string, tmp: string, path: string, condition: PutCondition): Promise<void> {
    const current = await this.head(key);
    const holds = current !== undefined && current.etag === condition.ifMatch && condition.ifNoneMatch === undefined;
    if (!holds) throw new PreconditionFailedError(this.url, key, condition);
    await rename(tmp, path);
  }

  private refuseVersion(key: string, options: ReadOptions | undefined): void {
    if (options?.version !== undefined) {
      throw new InvalidInputError(`${this.url}: a folder store keeps no object versions, so "${key}" cannot be read at version "${options.version}"`);
    }
  }

  private async walk(dir: string, out: BlobInfo[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    for (const e of entries) {
      const full = join(dir, e.name);
      if (e.isDirectory()) await this.walk(full, out);
      else if (e.isFile() && !e.name.endsWith(TMP_SUFFIX)) {
        const s = await stat(full, { bigint: true });
        out.push({ key: relative(this.root, full).split(sep).join('/'), size: Number(s.size), etag: fileTag(s) });
      }
    }
  }

  private async tempFor(path: string): Promise<string> {
    await mkdir(dirname(path), { recursive: true });
    return `${path}.${process.pid}-${HOST_TAG}-${randomBytes(6).toString('hex')}${TMP_SUFFIX}`;
  }
}

/**
 * Flushes a file's bytes, or a folder's entries (a rename or link into it), to the disk (fsync through a handle of
 * its own: the kernel flushes the file whichever handle wrote it).
 */
async function flush(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } catch (err) {
    // Some file systems cannot flush a folder; the file itself was flushed before it was published.
    if (!['EINVAL', 'ENOTSUP', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    await handle.close();
  }
}

/** Every `*.partial` file under a folder, at any depth (none when the folder does not exist). */
async function partialsUnder(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  return entries.filter((e) => e.isFile() && e.name.endsWith(TMP_SUFFIX)).map((e) => join(e.parentPath, e.name));
}

/**
 * A folder store's ETag, from metadata (hashing would read every file on each listing): a put renames a new file into
 * place (a new inode), and an in-place edit changes the change time even when it keeps size and modification time
 * (`cp -p`, `touch -r`); a metadata-only change (chmod) gives a new tag too, which costs a re-read, never a stale copy.
 */
function fileTag(s: BigIntStats): string {
  return [s.ino, s.size, s.mtimeNs, s.ctimeNs].map((n) => n.toString(16)).join('-');
}

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Passes a byte stream on in pieces of at most WRITE_CHUNK bytes (views, no copies). */
async function* splitChunks(source: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<Buffer | Uint8Array | string> {
  for await (const chunk of source) {
    if (typeof chunk === 'string' || chunk.length <= WRITE_CHUNK) yield chunk;
    else for (let at = 0; at < chunk.length; at += WRITE_CHUNK) yield chunk.subarray(at, at + WRITE_CHUNK);
  }
}
