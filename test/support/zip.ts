import { readFile } from 'node:fs/promises';
import { buffer } from 'node:stream/consumers';
import yauzl from 'yauzl';

// Zip archives read back with yauzl, an unzip library independent of the code that writes them.

/** Opens a zip given as bytes, or as a random-access reader of `size` bytes; the caller closes it. */
export async function openZip(source: Buffer | { reader: yauzl.RandomAccessReader; size: number }): Promise<yauzl.ZipFile> {
  const options = { lazyEntries: true, autoClose: false };
  return Buffer.isBuffer(source) ? yauzl.fromBufferPromise(source, options) : yauzl.fromRandomAccessReaderPromise(source.reader, source.size, options);
}

/** Every entry's central directory record, in archive order. */
export async function listEntries(zip: yauzl.ZipFile): Promise<yauzl.Entry[]> {
  return new Promise((done, fail) => {
    const entries: yauzl.Entry[] = [];
    zip.on('entry', (e: yauzl.Entry) => {
      entries.push(e);
      zip.readEntry();
    });
    zip.once('end', () => done(entries));
    zip.once('error', fail);
    zip.readEntry();
  });
}

/** One entry's bytes, inflated (yauzl checks their count against the central directory's sizes). */
export async function entryBytes(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Buffer> {
  return buffer(await zip.openReadStreamPromise(entry));
}

/** Entry names of a zip archive, given as bytes or a file path. */
export async function zipEntries(source: Buffer | string): Promise<string[]> {
  const zip = await openZip(typeof source === 'string' ? await readFile(source) : source);
  try {
    return (await listEntries(zip)).map((e) => e.fileName);
  } finally {
    zip.close();
  }
}
