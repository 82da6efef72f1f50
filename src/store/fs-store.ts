import { createReadStream, createWriteStream, type BigIntStats } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NotFoundError, validateKey, type BlobInfo, type BlobStore } from './blob-store.js';

const TMP_SUFFIX = '.partial';

/** A folder used as an object store: key `a/b.json` is file `<root>/a/b.json`; writes go to a temp file, then rename. */
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

  async get(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.pathOf(key));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async getOrThrow(key: string): Promise<Buffer> {
    const body = await this.get(key);
    if (body === undefined) throw new NotFoundError(this.url, key);
    return body;
  }

  async getStream(key: string): Promise<Readable> {
    if ((await this.head(key)) === undefined) throw new NotFoundError(this.url, key);
    return createReadStream(this.pathOf(key));
  }

  async put(key: string, body: Buffer | Uint8Array | string): Promise<void> {
    const path = this.pathOf(key);
    const tmp = await this.tempFor(path);
    try {
      await writeFile(tmp, body);
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async putStream(key: string, body: Readable): Promise<void> {
    const path = this.pathOf(key);
    const tmp = await this.tempFor(path);
    try {
      await pipeline(body, createWriteStream(tmp));
      await rename(tmp, path);
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
    return `${path}.${randomBytes(6).toString('hex')}${TMP_SUFFIX}`;
  }
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
