import { isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidDataError, MissingInputError } from '../errors/index.js';
import type { BlobStore } from '../store/blob-store.js';

/** Which column a problem is in: a header name or a 0-based index, as written in the experiment. */
export type ColumnRef = string | number;

/**
 * Bad input in a dataset file. `file` is the store URL + key, `line` the 1-based physical line (undefined when the
 * problem is the whole file, e.g. no data rows), `field` the column when one is concerned.
 * The message reads `<path>:<line>: <problem>`, the form editors and terminals link to.
 */
export class DataError extends InvalidDataError {
  constructor(
    readonly file: string,
    readonly display: string,
    readonly line: number | undefined,
    readonly problem: string,
    readonly field?: ColumnRef,
  ) {
    super(`${display}${line === undefined ? '' : `:${line}`}: ${problem}`);
  }
}

/** A dataset file or data folder that does not exist; the message lists every path tried and how to get the data. */
export class MissingDatasetError extends MissingInputError {
  constructor(
    readonly what: string,
    readonly tried: string[],
  ) {
    super(
      `${what} not found. Tried:\n${tried.map((t) => `  - ${t}`).join('\n')}\n` +
        'The data can be fetched with `textshift data fetch --dest DIR`; then pass --data-root DIR or set TEXTSHIFT_DATA=DIR.',
    );
  }
}

/** Store URL + key: the canonical name of a stored file. */
export function fileUrl(store: BlobStore, key: string): string {
  return `${store.url.replace(/\/+$/, '')}/${key}`;
}

/** How a stored file is named to a person: a local path (relative to the working directory when inside it), else the URL. */
export function displayName(store: BlobStore, key: string, cwd = process.cwd()): string {
  if (!store.url.startsWith('file:')) return fileUrl(store, key);
  const path = join(fileURLToPath(store.url), ...key.split('/'));
  const rel = relative(cwd, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}
