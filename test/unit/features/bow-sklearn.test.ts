/**
 * Our bag-of-words features against scikit-learn on the real data.
 *
 * The fixture test/fixtures/bow/sst2-train-10000.json was produced independently of this code by
 *   pip install scikit-learn && python3 scripts/fixtures/bow.py [DATA_ROOT]
 * with Python 3.11.7, scikit-learn 1.9.1, numpy 2.4.6 (recorded in the fixture's "versions" field; details in
 * test/fixtures/bow/README.md). It holds CountVectorizer(max_features=10000) fitted on all 6,920 sentences of
 * sst2/train.tsv with the k-th place tie broken by a stable argsort (count descending, then term order), the
 * corpus count of each term, count vectors of SST-2 and IMDB texts, sklearn's analyzer output on tricky strings
 * and a digest of its tokens over all 50,000 IMDB reviews.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { beforeAll, describe, expect, it } from 'vitest';
import { countTerms, fitBow, tokenize, transformBow, type BowVocabulary } from '../../../src/features/bow.js';
import { dataFile } from '../../support/data.js';

interface Fixture {
  documents: number;
  maxFeatures: number;
  distinctTerms: number;
  boundary: { count: number; above: number; tied: number };
  terms: string[];
  termCounts: number[];
  sklearnNative: { onlyNative: string[] };
  samples: { source: string; row: number; text: string; indices: number[]; counts: number[] }[];
  tokenization: { text: string; tokens: string[] }[];
  imdbTokens: { documents: number; tokens: number; sha256: string };
}

const fixture = JSON.parse(readFileSync(new URL('../../fixtures/bow/sst2-train-10000.json', import.meta.url), 'utf8')) as Fixture;

/** Sentences of an SST-2 TSV (sentence<TAB>label, quoting off). */
function readSentences(file: string): string[] {
  const rows = parse(readFileSync(dataFile(file)), { delimiter: '\t', quote: false }) as string[][];
  return rows.map((row) => row[0]!);
}

describe('bag of words = sklearn CountVectorizer(max_features=10000) on SST-2 train', () => {
  let train: string[];
  let vocab: BowVocabulary;

  beforeAll(() => {
    train = readSentences('sst2/train.tsv');
    vocab = fitBow(train, fixture.maxFeatures);
  });

  it('reads all 6,920 training sentences', () => {
    expect(train).toHaveLength(fixture.documents);
  });

  it('fits the same 10,000 terms in the same column order', () => {
    expect(vocab.terms).toHaveLength(10000);
    expect(vocab.terms).toEqual(fixture.terms);
    expect(vocab.index.get(fixture.terms[1234]!)).toBe(1234);
  });

  it('counts every term of the corpus as sklearn does, with the documented boundary tie', () => {
    const counts = countTerms(train);
    expect(counts.size).toBe(fixture.distinctTerms);
    expect(fixture.terms.map((t) => counts.get(t))).toEqual(fixture.termCounts);
    const { count, above, tied } = fixture.boundary;
    const values = [...counts.values()];
    expect(values.filter((c) => c > count)).toHaveLength(above);
    expect(values.filter((c) => c === count)).toHaveLength(tied);
  });

  it("differs from sklearn's own (machine-dependent) pick only among the terms tied at the k-th place", () => {
    const counts = countTerms(train);
    const { onlyNative } = fixture.sklearnNative;
    expect(onlyNative.length).toBeGreaterThan(0);
    for (const term of onlyNative) {
      expect(counts.get(term)).toBe(fixture.boundary.count);
      expect(vocab.index.has(term)).toBe(false);
    }
    const ours = vocab.terms.filter((t) => counts.get(t)! > fixture.boundary.count);
    expect(ours).toHaveLength(fixture.boundary.above);
  });

  it('transforms all training sentences into rows whose column sums are the corpus counts', () => {
    const x = transformBow(vocab, train);
    expect(x.rows).toBe(6920);
    expect(x.cols).toBe(10000);
    const sums = new Array<number>(x.cols).fill(0);
    for (let p = 0; p < x.indices.length; p++) sums[x.indices[p]!]! += x.data[p]!;
    expect(sums).toEqual(fixture.termCounts);
  });

  it('gives the same count vectors as sklearn for SST-2 and IMDB texts', () => {
    expect(fixture.samples.filter((s) => s.source === 'imdb.csv.gz')).toHaveLength(3);
    for (const sample of fixture.samples) {
      const x = transformBow(vocab, [sample.text]);
      const label = `${sample.source} row ${sample.row}`;
      expect(Array.from(x.indices), label).toEqual(sample.indices);
      expect(Array.from(x.data), label).toEqual(sample.counts);
    }
  });
});

describe("tokenizer = sklearn's default analyzer (lowercase + (?u)\\b\\w\\w+\\b)", () => {
  it('agrees on accents, combining marks, apostrophes, digits, "_", CJK, astral characters and <br />', () => {
    for (const { text, tokens } of fixture.tokenization) expect(tokenize(text), JSON.stringify(text)).toEqual(tokens);
  });

  it('agrees on every token of all 50,000 IMDB reviews', () => {
    const csv = gunzipSync(readFileSync(dataFile('imdb.csv.gz')));
    const rows = parse(csv, { from_line: 2 }) as string[][];
    expect(rows).toHaveLength(fixture.imdbTokens.documents);
    const digest = createHash('sha256');
    let tokens = 0;
    rows.forEach((row, i) => {
      const doc = tokenize(row[0]!);
      tokens += doc.length;
      digest.update((i ? '\n' : '') + doc.join(' '));
    });
    expect(tokens).toBe(fixture.imdbTokens.tokens);
    expect(digest.digest('hex')).toBe(fixture.imdbTokens.sha256);
  });
});
