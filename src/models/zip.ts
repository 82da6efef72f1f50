/** Reading zip archives (wheels, and model zips inside them) with yauzl, one entry at a time. */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import yauzl from 'yauzl';
import { InvalidDataError } from '../errors/index.js';

/** Opens a zip file for lazy reading; a file that is not a zip fails naming it. */
export async function openZip(path: string): Promise<yauzl.ZipFile> {
  try {
    return await promisify<string, yauzl.Options, yauzl.ZipFile>(yauzl.open)(path, { lazyEntries: true });
  } catch (err) {
    throw new InvalidDataError(`${path}: not a readable zip archive (${(err as Error).message})`);
  }
}

/** The entries of a lazily read zip, one at a time. */
export async function* zipEntries(zip: yauzl.ZipFile): AsyncGenerator<yauzl.Entry> {
  for (;;) {
    const next = new Promise<yauzl.Entry | undefined>((resolve, reject) => {
      zip.once('entry', resolve);
      zip.once('end', () => resolve(undefined));
      zip.once('error', reject);
    });
    zip.readEntry();
    const entry = await next;
    zip.removeAllListeners('entry').removeAllListeners('end').removeAllListeners('error');
    if (!entry) return;
    yield entry;
  }
}

/** Writes one entry's bytes to `dest` (yauzl checks its CRC-32 and size while streaming). */
export async function extractEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, dest: string): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  await pipeline(await promisify(zip.openReadStream.bind(zip))(entry), createWriteStream(dest));
}
