import { readFile } from 'node:fs/promises';
import yauzl from 'yauzl';

/** Entry names of a zip archive, given as bytes or a file path (read by an independent unzip library). */
export async function zipEntries(source: Buffer | string): Promise<string[]> {
  const body = typeof source === 'string' ? await readFile(source) : source;
  return new Promise((done, fail) => {
    yauzl.fromBuffer(body, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return fail(err ?? new Error('not a zip'));
      const names: string[] = [];
      zip.on('entry', (e: yauzl.Entry) => {
        names.push(e.fileName);
        zip.readEntry();
      });
      zip.once('end', () => done(names));
      zip.once('error', fail);
      zip.readEntry();
    });
  });
}
