/**
 * Bag-of-words features with scikit-learn `CountVectorizer(max_features=k)` semantics (default settings):
 * Python `str.lower()`, token pattern `(?u)\b\w\w+\b`, vocabulary = the k terms with the largest total corpus
 * count, columns in code-point order of the terms, values = term counts.
 *
 * Tie at the k-th place: sklearn sorts the terms by name and keeps `argsort(-counts)[:k]` with numpy's default,
 * unstable and CPU-dispatched argsort, so which of the tied terms it keeps differs between machines (on SST-2
 * train, 6,626 terms tie at count 1 for the last 2,843 places, and numpy 2.4.6 keeps three different sets with
 * its AVX-512, AVX2 and baseline code paths). We keep what a *stable* argsort keeps: count descending, ties in
 * code-point order of the term. test/fixtures/bow/README.md records the evidence.
 */
import { CsrBuilder, type Csr } from '../matrix/csr.js';
import { InvalidDataError } from '../errors/index.js';

/** sklearn's default token pattern, recorded in vocabulary files. */
export const TOKEN_PATTERN = String.raw`(?u)\b\w\w+\b`;

// Python's Unicode `\w` is `str.isalnum()` or "_", which is exactly the general categories L* and N* plus "_"
// (checked over every code point against CPython 3.11 / Unicode 14; Node's newer Unicode differs only on code
// points unassigned in 14). So `\b\w\w+\b` matches exactly the maximal runs of two or more word characters,
// lengths counted in code points. JS `\w` and `\b` are ASCII-only; a `\p{..}` regex plus a Map lookup per token
// was ~4x slower than this scanner, which classifies UTF-16 code units with a table and hashes while scanning.
const WORD_CHAR = /^[\p{L}\p{N}_]$/u;
const TOKEN = /^[\p{L}\p{N}_]{2,}$/u;
const NON_WORD = 0;
const WORD = 1;
const HIGH_SURROGATE = 2;
const UNIT_CLASS = buildUnitClasses();

function buildUnitClasses(): Uint8Array {
  const classes = new Uint8Array(0x10000);
  for (let u = 0; u < 0x10000; u++) {
    if (u >= 0xd800 && u <= 0xdbff) classes[u] = HIGH_SURROGATE;
    else if (u < 0xdc00 || u > 0xdfff) classes[u] = WORD_CHAR.test(String.fromCharCode(u)) ? WORD : NON_WORD;
  }
  return classes;
}

function isAstralWordAt(text: string, i: number): boolean {
  const low = text.charCodeAt(i + 1);
  return low >= 0xdc00 && low <= 0xdfff && WORD_CHAR.test(text.slice(i, i + 2));
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function hashOf(term: string): number {
  let hash = FNV_OFFSET;
  for (let i = 0; i < term.length; i++) hash = Math.imul(hash ^ term.charCodeAt(i), FNV_PRIME);
  return hash;
}

/** Calls visit(start, end, hash) for each token of an already lower-cased text; hash = hashOf(the token). */
function scanTokens(text: string, visit: (start: number, end: number, hash: number) => void): void {
  // One flat loop over code units: measured ~2.5x faster than nested skip/consume loops.
  const n = text.length;
  let start = 0;
  let chars = 0;
  let hash = FNV_OFFSET;
  for (let i = 0; i < n; i++) {
    const unit = text.charCodeAt(i);
    const kind = UNIT_CLASS[unit];
    if (kind === WORD || (kind === HIGH_SURROGATE && isAstralWordAt(text, i))) {
      if (chars === 0) start = i;
      chars++;
      hash = Math.imul(hash ^ unit, FNV_PRIME);
      if (kind === HIGH_SURROGATE) hash = Math.imul(hash ^ text.charCodeAt(++i), FNV_PRIME);
    } else {
      if (chars >= 2) visit(start, i, hash);
      chars = 0;
      hash = FNV_OFFSET;
    }
  }
  if (chars >= 2) visit(start, n, hash);
}

/**
 * Open-addressing hash table of terms, looked up by a slice of a text without allocating the slice. The code units
 * of all terms are packed in one array: comparing against it is cache-friendlier than dereferencing term strings.
 */
class TermTable {
  readonly terms: string[] = [];
  private hashes = new Int32Array(1024);
  private offsets = new Int32Array(1025);
  private units = new Uint16Array(8192);
  private slots = new Int32Array(2048).fill(-1);

  /** Id of text[start, end) (hash = its hashOf), or -1. */
  find(text: string, start: number, end: number, hash: number): number {
    const mask = this.slots.length - 1;
    for (let s = hash & mask; ; s = (s + 1) & mask) {
      const id = this.slots[s]!;
      if (id < 0) return -1;
      if (this.hashes[id] !== hash) continue;
      const from = this.offsets[id]!;
      if (this.offsets[id + 1]! - from !== end - start) continue;
      let i = start;
      while (i < end && text.charCodeAt(i) === this.units[from + i - start]) i++;
      if (i === end) return id;
    }
  }

  /** Adds a term that is not in the table; ids are dense, in insertion order. */
  add(term: string, hash: number): number {
    const id = this.terms.length;
    this.terms.push(term);
    if (id + 1 === this.hashes.length) {
      this.hashes = resized(this.hashes, 2 * this.hashes.length);
      this.offsets = resized(this.offsets, this.hashes.length + 1);
      this.slots = new Int32Array(2 * this.hashes.length).fill(-1);
      for (let j = 0; j < id; j++) this.place(j);
    }
    const from = this.offsets[id]!;
    if (from + term.length > this.units.length) this.units = resized(this.units, 2 * (from + term.length));
    for (let i = 0; i < term.length; i++) this.units[from + i] = term.charCodeAt(i);
    this.offsets[id + 1] = from + term.length;
    this.hashes[id] = hash;
    this.place(id);
    return id;
  }

  private place(id: number): void {
    const mask = this.slots.length - 1;
    let s = this.hashes[id]! & mask;
    while (this.slots[s]! >= 0) s = (s + 1) & mask;
    this.slots[s] = id;
  }
}

function resized<T extends Int32Array | Uint16Array>(array: T, length: number): T {
  const next = new (array.constructor as new (n: number) => T)(length);
  next.set(array);
  return next;
}

/** The vocabulary: terms in column order and the column of each term. */
export interface BowVocabulary {
  readonly terms: readonly string[];
  readonly index: ReadonlyMap<string, number>;
}

/** Tokens of one document exactly as sklearn's default `CountVectorizer` analyzer yields them. */
export function tokenize(text: string): string[] {
  const lower = text.toLowerCase();
  const tokens: string[] = [];
  scanTokens(lower, (start, end) => tokens.push(lower.slice(start, end)));
  return tokens;
}

/** Orders strings by Unicode code point, as Python compares `str` (JS `<` compares UTF-16 code units). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

// Surrogates (astral code points) rank above U+E000-U+FFFF; code-unit order alone puts them below.
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/**
 * Counts terms one document at a time, so a corpus can be streamed through it: memory grows with the number of
 * distinct terms, not with the text. Counts are sums, so the order documents arrive in does not change them.
 */
export class TermCounter {
  private readonly table = new TermTable();
  private counts = new Float64Array(1024);

  /** Adds every token of one document. */
  add(text: string): void {
    const lower = text.toLowerCase();
    scanTokens(lower, (start, end, hash) => {
      let id = this.table.find(lower, start, end, hash);
      if (id < 0) {
        id = this.table.add(lower.slice(start, end), hash);
        if (id === this.counts.length) {
          const grown = new Float64Array(2 * id);
          grown.set(this.counts);
          this.counts = grown;
        }
      }
      this.counts[id]!++;
    });
  }

  /** Total count of every term added so far, terms in order of first appearance. */
  totals(): Map<string, number> {
    return new Map(this.table.terms.map((term, id) => [term, this.counts[id]!]));
  }

  /** The vocabulary of the documents added so far (see fitBow). */
  fit(maxFeatures: number): BowVocabulary {
    return vocabularyFromCounts(this.totals(), maxFeatures);
  }
}

/** Total count of every term over all documents (sklearn's `X.sum(axis=0)` before `max_features`). */
export function countTerms(texts: Iterable<string>): Map<string, number> {
  const counter = new TermCounter();
  for (const text of texts) counter.add(text);
  return counter.totals();
}

/** The at most maxFeatures most frequent terms (ties by code point, see the module comment), in column order. */
export function selectTerms(counts: ReadonlyMap<string, number>, maxFeatures: number): string[] {
  if (!Number.isInteger(maxFeatures) || maxFeatures < 1) {
    throw new RangeError(`maxFeatures must be a positive integer, got ${maxFeatures}`);
  }
  const ranked = [...counts].sort((a, b) => b[1] - a[1] || compareCodePoints(a[0], b[0]));
  return ranked
    .slice(0, maxFeatures)
    .map(([term]) => term)
    .sort(compareCodePoints);
}

/** A vocabulary over the given terms, which must be distinct and in code-point order (column order). */
export function vocabularyFromTerms(terms: readonly string[], source = 'vocabulary'): BowVocabulary {
  if (terms.length === 0) throw new InvalidDataError(`${source}: empty vocabulary (no terms)`);
  const index = new Map<string, number>();
  terms.forEach((term, i) => {
    if (typeof term !== 'string' || !TOKEN.test(term)) {
      throw new InvalidDataError(`${source}: term ${i} ${JSON.stringify(term)} is not a token (2+ letters, digits or "_")`);
    }
    if (i > 0 && compareCodePoints(terms[i - 1]!, term) >= 0) {
      throw new InvalidDataError(`${source}: terms ${i - 1} and ${i} (${JSON.stringify(terms[i - 1])}, ${JSON.stringify(term)}) are not distinct and in code-point order`);
    }
    index.set(term, i);
  });
  return { terms: Object.freeze([...terms]), index };
}

/** Fits the vocabulary: the maxFeatures terms with the largest corpus counts, columns in code-point order. */
export function fitBow(texts: Iterable<string>, maxFeatures: number): BowVocabulary {
  return vocabularyFromCounts(countTerms(texts), maxFeatures);
}

function vocabularyFromCounts(counts: ReadonlyMap<string, number>, maxFeatures: number): BowVocabulary {
  const terms = selectTerms(counts, maxFeatures);
  if (terms.length === 0) throw new InvalidDataError('fitBow: empty vocabulary; the documents contain no token of 2+ letters, digits or "_"');
  return vocabularyFromTerms(terms);
}

// Lookup tables of vocabularies already used by transformBow (vocabularies are immutable).
const tables = new WeakMap<BowVocabulary, TermTable>();

function lookupTable(vocab: BowVocabulary): TermTable {
  let table = tables.get(vocab);
  if (table === undefined) {
    table = new TermTable();
    for (const term of vocab.terms) table.add(term, hashOf(term));
    tables.set(vocab, table);
  }
  return table;
}

/** Term-count vectors of the texts (one CSR row per text, out-of-vocabulary tokens ignored). */
export function transformBow(vocab: BowVocabulary, texts: Iterable<string>): Csr {
  const table = lookupTable(vocab);
  const cols = vocab.terms.length;
  const builder = new CsrBuilder(cols);
  const counts = new Int32Array(cols);
  const touched = new Int32Array(cols);
  let n = 0;
  for (const text of texts) {
    const lower = text.toLowerCase();
    n = 0;
    scanTokens(lower, (start, end, hash) => {
      const col = table.find(lower, start, end, hash);
      if (col < 0) return;
      if (counts[col] === 0) touched[n++] = col;
      counts[col]!++;
    });
    touched.subarray(0, n).sort();
    for (let j = 0; j < n; j++) {
      const col = touched[j]!;
      builder.push(col, counts[col]!);
      counts[col] = 0;
    }
    builder.endRow();
  }
  return builder.finish();
}

const FORMAT = 'textshift.bow-vocabulary';
const FORMAT_VERSION = 1;

/** The vocabulary as a JSON document (terms in column order, plus the analyzer it was fitted with). */
export function vocabularyToJson(vocab: BowVocabulary): string {
  return `${JSON.stringify({
    format: FORMAT,
    version: FORMAT_VERSION,
    analyzer: { lowercase: true, tokenPattern: TOKEN_PATTERN },
    terms: vocab.terms,
  })}\n`;
}

/** Parses a vocabulary JSON document; throws naming `source` and the offending field. */
export function vocabularyFromJson(text: string, source = 'vocabulary.json'): BowVocabulary {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new InvalidDataError(`${source}: not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null) throw new InvalidDataError(`${source}: expected a JSON object`);
  const { format, version, analyzer, terms } = doc as Record<string, unknown>;
  if (format !== FORMAT) throw new InvalidDataError(`${source}: field "format" is ${JSON.stringify(format)}, expected "${FORMAT}"`);
  if (version !== FORMAT_VERSION) throw new InvalidDataError(`${source}: field "version" is ${JSON.stringify(version)}, expected ${FORMAT_VERSION}`);
  const a = analyzer as Record<string, unknown> | null | undefined;
  if (a?.lowercase !== true || a.tokenPattern !== TOKEN_PATTERN) {
    throw new InvalidDataError(
      `${source}: field "analyzer" is ${JSON.stringify(analyzer)}, expected {"lowercase":true,"tokenPattern":${JSON.stringify(TOKEN_PATTERN)}}`,
    );
  }
  if (!Array.isArray(terms)) throw new InvalidDataError(`${source}: field "terms" must be an array of strings`);
  return vocabularyFromTerms(terms as string[], `${source}: field "terms"`);
}
