import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { CsvError, parse, type Options as CsvOptions } from 'csv-parse';
import { NotFoundError, type BlobStore } from '../store/blob-store.js';
import type { FileConfig } from '../config/experiment.js';
import { DataError, MissingDatasetError, displayName, fileUrl, type ColumnRef } from './errors.js';
import type { SkippedRow } from '../run/records.js';

/** One labelled text. */
export interface Example {
  text: string;
  /** Class index (the dataset's `labels` mapping applied to the raw label value). */
  label: number;
}

/** How rows become examples. */
export interface TableOptions {
  /** Raw label value -> class index. */
  labels: Record<string, number>;
  /** `error`: the first bad row fails the read; `skip`: bad rows are left out and returned in `skipped`. */
  onBadRow: 'error' | 'skip';
}

/** What scanning one table file found, besides the rows it handed over. */
export interface TableScan {
  /** Rows kept (every row handed to the visitor). */
  rows: number;
  /** Rows left out under `onBadRow: "skip"`. */
  skippedCount: number;
  /** The first SKIPPED_LISTED of them. */
  skipped: SkippedRow[];
  /** sha256 (hex) of the file's bytes as stored (compressed, for .gz). */
  sha256: string;
  /** Size of the file as stored. */
  bytes: number;
}

/** Receives each kept row of a table, in file order, with the physical line it starts on; awaited before the next. */
export type RowVisitor = (example: Example, line: number) => void | Promise<void>;

/** How many skipped rows a scan lists (the manifest keeps these); the rest are only counted. */
export const SKIPPED_LISTED = 20;

/** Builds the DataError for a problem at a line (undefined: the whole file) and column. */
type Fail = (line: number | undefined, problem: string, field?: ColumnRef) => DataError;

/** A parsed record with the physical line it starts on. */
interface Row {
  fields: Uint8Array[];
  line: number;
}

/** Why a row is bad, and the column concerned. */
interface Problem {
  problem: string;
  field?: ColumnRef;
}

const UTF8_BOM = [0xef, 0xbb, 0xbf];
/** Every line ending pandas accepts, in any mix: CRLF first so that it is one ending, not two. */
const RECORD_DELIMITERS = [Buffer.from('\r\n'), Buffer.from('\n'), Buffer.from('\r')];
/** Larger than zlib's 16 KiB default: fewer, bigger chunks cut the parser's per-chunk work (~10% CPU on IMDB). */
const GUNZIP_CHUNK = 256 * 1024;

/**
 * Streams a TSV/CSV table (gzip when the key ends in `.gz`) from the store and hands each kept row to `visit`,
 * holding no more than one record in memory. CSV follows RFC 4180 quoting; TSV has no quoting (a `"` is plain
 * text); lines may end in LF, CRLF or CR, mixed. Text and label columns are a header name or a 0-based index.
 * Bad input raises a DataError naming file, line and column; with `onBadRow: "skip"` bad rows are counted instead,
 * but a file-level problem (missing or duplicate header column, broken quoting, broken gzip, no data rows, a file
 * over `maxBytes` after decompression or `maxRows` rows, or a record over `maxRecordBytes`) always fails.
 */
export async function scanTable(store: BlobStore, spec: FileConfig, options: TableOptions, visit: RowVisitor): Promise<TableScan> {
  const key = spec.path;
  const file = fileUrl(store, key);
  const display = displayName(store, key);
  const fail: Fail = (line, problem, field) => new DataError(file, display, line, problem, field);

  for (const [name, ref] of [['text', spec.text], ['label', spec.label]] as const) {
    if (typeof ref === 'string' && !spec.header) {
      throw fail(undefined, `${name} column "${ref}" is a name, but the file has no header (header: false); give a 0-based index`, ref);
    }
  }

  let source: Readable;
  try {
    source = await store.getStream(key);
  } catch (err) {
    if (err instanceof NotFoundError) throw new MissingDatasetError(`data file "${key}"`, [display]);
    throw err;
  }

  const hash = createHash('sha256');
  let bytes = 0;
  async function* hashBytes(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      hash.update(chunk);
      bytes += chunk.length;
      yield chunk;
    }
  }

  // Updated synchronously by the parser, so it is exact even when parsing fails mid-file.
  let lastLine = 0;
  const csvOptions: CsvOptions<Row, Uint8Array[]> = {
    // Fields as bytes: we decode them ourselves with a fatal decoder, so invalid UTF-8 is an error, not U+FFFD.
    encoding: null,
    // The BOM is removed before parsing (a BOM makes csv-parse switch to lenient string decoding).
    bom: false,
    delimiter: spec.format === 'tsv' ? '\t' : ',',
    quote: spec.format === 'tsv' ? null : '"',
    // Not auto-detected: csv-parse would keep the first line's ending and leave a stray CR in the fields after it.
    record_delimiter: RECORD_DELIMITERS,
    // Field counts are checked below, with messages naming the file, line and column.
    relax_column_count: true,
    on_record: (fields, info) => {
      const row = { fields, line: lastLine + 1 };
      lastLine = info.lines;
      return row;
    },
  };
  // parse()'s overloads only take string-record options; the record types above are the checked ones.
  const parser = parse(csvOptions as unknown as CsvOptions);
  const collect = new RowCollector(spec, options, fail, file, visit);
  const gzip = key.endsWith('.gz');
  // Counts the bytes the parser gets (after gunzip) and stops the read once they pass the cap, before a
  // decompression bomb can fill memory or run out the clock.
  let parsed = 0;
  async function* capBytes(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      parsed += chunk.length;
      if (parsed > spec.maxBytes) {
        const what = gzip ? 'decompresses to more than' : 'is larger than';
        throw fail(undefined, `the file ${what} maxBytes (${spec.maxBytes} bytes); raise "maxBytes" in its file spec if it is meant to be this large`);
      }
      yield chunk;
    }
  }

  const toParser = (chunks: AsyncIterable<Buffer>) => limitRecords(spec, fail)(stripUtf8Bom(capBytes(chunks)));

  try {
    if (gzip) {
      await pipeline(source, hashBytes, createGunzip({ chunkSize: GUNZIP_CHUNK }), toParser, parser, (rows: AsyncIterable<Row>) => collect.consume(rows));
    } else {
      await pipeline(source, hashBytes, toParser, parser, (rows: AsyncIterable<Row>) => collect.consume(rows));
    }
  } catch (err) {
    if (err instanceof CsvError) throw syntaxError(err, lastLine + 1, fail);
    if (isZlibError(err)) throw fail(undefined, `not a valid gzip file (${(err as Error).message})`);
    throw err;
  }

  if (collect.rows === 0) {
    const first = collect.skipped[0];
    const what =
      first !== undefined
        ? `all ${collect.skippedCount} data rows are bad and were skipped (first: line ${first.line}: ${first.reason})`
        : collect.sawHeader
          ? 'the file has a header but no data rows'
          : 'the file is empty';
    throw fail(undefined, `no data rows: ${what}`);
  }
  return { rows: collect.rows, skippedCount: collect.skippedCount, skipped: collect.skipped, sha256: hash.digest('hex'), bytes };
}

/** Turns parsed rows into examples, validating each against the file spec, and hands them on. */
class RowCollector {
  rows = 0;
  skippedCount = 0;
  readonly skipped: SkippedRow[] = [];
  sawHeader = false;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private readonly labels: Map<string, number>;
  private textIndex = -1;
  private labelIndex = -1;
  /** Fields every row must have: the header's count, or the first row's without a header. */
  private width = -1;
  private widthSource = '';

  constructor(
    private readonly spec: FileConfig,
    private readonly options: TableOptions,
    private readonly fail: Fail,
    private readonly file: string,
    private readonly visit: RowVisitor,
  ) {
    this.labels = new Map(Object.entries(options.labels));
    if (typeof spec.text === 'number') this.textIndex = spec.text;
    if (typeof spec.label === 'number') this.labelIndex = spec.label;
  }

  async consume(rows: AsyncIterable<Row>): Promise<void> {
    for await (const row of rows) {
      // A blank line is no row (as pandas' skip_blank_lines); csv-parse gives it as one empty field.
      if (row.fields.length === 1 && row.fields[0]!.length === 0) continue;
      if (this.spec.header && !this.sawHeader) {
        this.readHeader(row);
        continue;
      }
      if (this.width < 0) {
        this.width = row.fields.length;
        this.widthSource = `as line ${row.line}`;
      }
      const result = this.toExample(row);
      if ('label' in result) {
        if (this.rows === this.spec.maxRows) {
          throw this.fail(row.line, `more than maxRows (${this.spec.maxRows}) data rows; raise "maxRows" in its file spec if the file is meant to be this long`);
        }
        this.rows++;
        await this.visit(result, row.line);
      } else if (this.options.onBadRow === 'error') {
        throw this.fail(row.line, result.problem, result.field);
      } else {
        this.skippedCount++;
        if (this.skipped.length < SKIPPED_LISTED) this.skipped.push({ file: this.file, line: row.line, reason: result.problem });
      }
    }
  }

  private readHeader(row: Row): void {
    this.sawHeader = true;
    const names = row.fields.map((f, i) => {
      try {
        return this.decoder.decode(f);
      } catch {
        throw this.fail(row.line, `invalid UTF-8 in header column ${i}`, i);
      }
    });
    const seen = new Map<string, number>();
    names.forEach((name, i) => {
      const first = seen.get(name);
      if (first !== undefined) {
        throw this.fail(row.line, `header names columns ${first} and ${i} both ${JSON.stringify(name)}; column names must be unique`, name);
      }
      seen.set(name, i);
    });
    this.width = names.length;
    this.widthSource = 'as the header';
    const resolve = (role: string, ref: ColumnRef): number => {
      const index = typeof ref === 'number' ? ref : names.indexOf(ref);
      if (index < 0 || index >= names.length) {
        const which = typeof ref === 'number' ? `no column ${ref}` : `no column "${ref}"`;
        throw this.fail(row.line, `header has ${which} (the ${role} column); found ${names.map((n) => JSON.stringify(n)).join(', ')}`, ref);
      }
      return index;
    };
    this.textIndex = resolve('text', this.spec.text);
    this.labelIndex = resolve('label', this.spec.label);
  }

  /** The row's example, or what is wrong with it. */
  private toExample(row: Row): Example | Problem {
    const { fields } = row;
    const { text: textRef, label: labelRef } = this.spec;
    for (const [index, ref] of [
      [this.textIndex, textRef],
      [this.labelIndex, labelRef],
    ] as const) {
      if (index >= fields.length) {
        return { problem: `missing ${columnName(ref)}: the row has ${plural(fields.length, 'field')}`, field: ref };
      }
    }
    if (fields.length !== this.width) {
      return { problem: `the row has ${plural(fields.length, 'field')}; expected ${this.width} (${this.widthSource})` };
    }
    const text = this.decode(fields[this.textIndex]!);
    if (text === undefined) return { problem: `invalid UTF-8 in ${columnName(textRef)}`, field: textRef };
    const raw = this.decode(fields[this.labelIndex]!);
    if (raw === undefined) return { problem: `invalid UTF-8 in ${columnName(labelRef)}`, field: labelRef };
    const label = this.labels.get(raw);
    if (label === undefined) {
      const allowed = [...this.labels.keys()].map((k) => JSON.stringify(k)).join(', ');
      return { problem: `unknown label ${JSON.stringify(raw)} in ${columnName(labelRef)}; expected one of ${allowed}`, field: labelRef };
    }
    if (text.trim() === '') return { problem: `empty text in ${columnName(textRef)}`, field: textRef };
    return { text, label };
  }

  private decode(bytes: Uint8Array): string | undefined {
    try {
      return this.decoder.decode(bytes);
    } catch {
      return undefined;
    }
  }
}

const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;

/**
 * Fails a record longer than `maxRecordBytes` before the parser buffers it. A record runs from its first byte to a
 * line ending outside quotes (CSV quotes toggle, which is exact for RFC 4180 quoting; TSV has none), so the cap holds
 * whatever the record is made of. csv-parse's own max_record_size counts only the current field when fields are
 * bytes, so a line of a million delimiters would pass it. Only line breaks and quotes are visited (found with
 * indexOf): a loop over every byte cost more than a second on IMDB.
 */
function limitRecords(spec: FileConfig, fail: Fail): (chunks: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> {
  const quoting = spec.format === 'csv';
  const max = spec.maxRecordBytes;
  return async function* (chunks) {
    let length = 0;
    let line = 1;
    let recordLine = 1;
    let inQuotes = false;
    let afterCr = false;
    const check = () => {
      if (length > max) {
        throw fail(
          recordLine,
          `the record starting on this line is longer than maxRecordBytes (${max} bytes); raise "maxRecordBytes" in its file spec if its rows are meant to be this long`,
        );
      }
    };
    for await (const chunk of chunks) {
      const end = chunk.length;
      const next = (byte: number, from: number) => {
        const at = chunk.indexOf(byte, from);
        return at < 0 ? end : at;
      };
      let lf = next(LF, 0);
      let cr = next(CR, 0);
      let quote = quoting ? next(QUOTE, 0) : end;
      for (let i = 0; ; ) {
        const at = Math.min(lf, cr, quote);
        if (at > i) {
          length += at - i;
          afterCr = false;
        }
        check();
        if (at === end) break;
        if (at === quote) {
          inQuotes = !inQuotes;
          afterCr = false;
          length++;
          quote = next(QUOTE, at + 1);
        } else {
          // CRLF is one line ending; a lone CR or LF is one too.
          if (at === cr || !afterCr) line++;
          afterCr = at === cr;
          if (inQuotes) {
            length++;
          } else {
            length = 0;
            recordLine = line;
          }
          if (at === lf) lf = next(LF, at + 1);
          else cr = next(CR, at + 1);
        }
        check();
        i = at + 1;
      }
      yield chunk;
    }
  };
}

/** Drops a leading UTF-8 byte order mark. */
async function* stripUtf8Bom(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let head: Buffer | undefined = Buffer.alloc(0);
  for await (const chunk of chunks) {
    if (head === undefined) {
      yield chunk;
      continue;
    }
    head = Buffer.concat([head, chunk]);
    if (head.length < UTF8_BOM.length) continue;
    yield hasBom(head) ? head.subarray(UTF8_BOM.length) : head;
    head = undefined;
  }
  if (head !== undefined && head.length > 0) yield head;
}

function hasBom(buf: Buffer): boolean {
  return UTF8_BOM.every((b, i) => buf[i] === b);
}

/** A csv-parse error as a DataError; broken quoting cannot be skipped row by row because the row's end is unknown. */
function syntaxError(err: CsvError, rowLine: number, fail: Fail): DataError {
  const line = typeof err.lines === 'number' ? err.lines : rowLine;
  const column = typeof err.column === 'number' ? err.column : undefined;
  const where = column === undefined ? '' : ` in column ${column}`;
  const hint = 'a field with a quote must be quoted whole, with each inner quote doubled ("")';
  switch (err.code) {
    case 'CSV_INVALID_CLOSING_QUOTE': {
      const next = /got "(.*?)" at line/s.exec(err.message)?.[1] ?? '?';
      return fail(line, `malformed quoting${where}: a closing quote is followed by ${JSON.stringify(next)} instead of a delimiter or the end of the line; ${hint}`, column);
    }
    case 'INVALID_OPENING_QUOTE':
      return fail(line, `malformed quoting${where}: a quote inside an unquoted field; ${hint}`, column);
    case 'CSV_QUOTE_NOT_CLOSED':
      return fail(rowLine, `malformed quoting: the row starting on this line opens a quoted field that is never closed (end of file at line ${line})`);
    default:
      return fail(line, `malformed table: ${err.message}`, column);
  }
}

function isZlibError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
}

function columnName(ref: ColumnRef): string {
  return typeof ref === 'number' ? `column ${ref}` : `column "${ref}"`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
