import { describe, expect, it } from 'vitest';
import {
  compareCodePoints,
  countTerms,
  fitBow,
  selectTerms,
  tokenize,
  transformBow,
  vocabularyFromJson,
  vocabularyFromTerms,
  vocabularyToJson,
} from '../../../src/features/bow.js';
import { MT19937 } from '../../../src/random/mt19937.js';

describe('tokenize', () => {
  it('lower-cases and keeps runs of 2+ letters, digits or "_"', () => {
    expect(tokenize("It's a GREAT film,<br />10/10 re_watch!")).toEqual(['it', 'great', 'film', 'br', '10', '10', 're_watch']);
  });

  it('splits at combining marks and counts astral characters as one character', () => {
    expect(tokenize('cafe\u0301 𝐀 𝐀𝐁 x𝐀')).toEqual(['cafe', '𝐀𝐁', 'x𝐀']);
    expect(tokenize('😀😀 a\ud800b')).toEqual([]);
  });

  it('matches a \\p{L}\\p{N}_ regex (the Python \\w class) on random strings of tricky characters', () => {
    const alphabet = [...'aZé_1٣½ \t-\'’<>/.', '\u0301', '\u200b', '𝐀', '😀', '東', 'Σ', 'İ', '\ud800'];
    const reference = (text: string) => text.toLowerCase().match(/[\p{L}\p{N}_]{2,}/gu) ?? [];
    const rng = MT19937.fromSeed(7);
    for (let n = 0; n < 2000; n++) {
      let text = '';
      const length = rng.nextUint32() % 40;
      for (let i = 0; i < length; i++) text += alphabet[rng.nextUint32() % alphabet.length];
      expect(tokenize(text), JSON.stringify(text)).toEqual(reference(text));
    }
  });
});

describe('compareCodePoints', () => {
  it('orders by code point like Python, not by UTF-16 code unit like Array.sort', () => {
    const words = ['\uffff', '𝐀', 'zz', 'a', 'ab', 'é'];
    expect([...words].sort(compareCodePoints)).toEqual(['a', 'ab', 'zz', 'é', '\uffff', '𝐀']);
    expect([...words].sort()).not.toEqual([...words].sort(compareCodePoints));
    expect(compareCodePoints('abc', 'abc')).toBe(0);
  });
});

describe('fitting', () => {
  it('counts every term over all documents', () => {
    expect(countTerms(['bb aa bb', 'AA cc', 'x'])).toEqual(new Map([['bb', 2], ['aa', 2], ['cc', 1]]));
  });

  it('counts exactly while its hash table grows to many thousand terms', () => {
    const rng = MT19937.fromSeed(3);
    const docs = Array.from({ length: 300 }, () =>
      Array.from({ length: 100 }, () => `w${rng.nextUint32() % 20000}`).join(' '),
    );
    const expected = new Map<string, number>();
    for (const doc of docs) for (const w of doc.split(' ')) expected.set(w, (expected.get(w) ?? 0) + 1);
    const counts = countTerms(docs);
    expect(counts.size).toBeGreaterThan(15000);
    expect(new Map([...counts].sort())).toEqual(new Map([...expected].sort()));
  });

  it('keeps the most frequent terms, breaks ties at the k-th place by code point, orders columns by code point', () => {
    const counts = new Map([['dd', 3], ['cc', 1], ['bb', 2], ['ee', 1], ['aa', 1]]);
    expect(selectTerms(counts, 3)).toEqual(['aa', 'bb', 'dd']);
    expect(selectTerms(counts, 4)).toEqual(['aa', 'bb', 'cc', 'dd']);
    expect(selectTerms(counts, 99)).toEqual(['aa', 'bb', 'cc', 'dd', 'ee']);
  });

  it('fits a vocabulary with a term -> column map', () => {
    const vocab = fitBow(['the cat sat', 'the dog', 'THE cat'], 2);
    expect(vocab.terms).toEqual(['cat', 'the']);
    expect([...vocab.index]).toEqual([['cat', 0], ['the', 1]]);
  });

  it('rejects a bad maxFeatures and documents without tokens', () => {
    expect(() => fitBow(['aa'], 0)).toThrow(/maxFeatures must be a positive integer, got 0/);
    expect(() => fitBow(['aa'], 1.5)).toThrow(/maxFeatures/);
    expect(() => fitBow(['a b', '!!'], 10)).toThrow(/empty vocabulary/);
  });
});

describe('transformBow', () => {
  const vocab = vocabularyFromTerms(['bad', 'film', 'good', 'not']);

  it('writes one row of term counts per text, columns ascending, unknown tokens ignored', () => {
    const x = transformBow(vocab, ['Not good, NOT bad: a good good film', '', 'unknown words only', 'film']);
    expect(x.rows).toBe(4);
    expect(x.cols).toBe(4);
    expect(Array.from(x.indptr)).toEqual([0, 4, 4, 4, 5]);
    expect(Array.from(x.indices)).toEqual([0, 1, 2, 3, 1]);
    expect(Array.from(x.data)).toEqual([1, 1, 3, 2, 1]);
    expect(x.data).toBeInstanceOf(Float32Array);
  });

  it('accepts any iterable and gives the same rows on repeated calls', () => {
    function* texts() {
      yield 'good film';
      yield 'bad film';
    }
    const a = transformBow(vocab, texts());
    const b = transformBow(vocab, ['good film', 'bad film']);
    expect(a).toEqual(b);
    expect(Array.from(a.indices)).toEqual([1, 2, 0, 1]);
  });

  it('grows its buffers past thousands of rows', () => {
    const x = transformBow(vocab, Array.from({ length: 5000 }, (_, i) => (i % 2 ? 'good good' : 'bad not film')));
    expect(x.rows).toBe(5000);
    expect(x.indices.length).toBe(2500 * 1 + 2500 * 3);
    expect(Array.from(x.data.subarray(x.indptr[4999]!, x.indptr[5000]!))).toEqual([2]);
  });
});

describe('vocabulary JSON', () => {
  const vocab = vocabularyFromTerms(['aa', 'bb', 'é_1', '𝐀𝐁']);

  it('round-trips terms in column order', () => {
    const json = vocabularyToJson(vocab);
    expect(JSON.parse(json)).toEqual({
      format: 'textshift.bow-vocabulary',
      version: 1,
      analyzer: { lowercase: true, tokenPattern: '(?u)\\b\\w\\w+\\b' },
      terms: ['aa', 'bb', 'é_1', '𝐀𝐁'],
    });
    const back = vocabularyFromJson(json);
    expect(back.terms).toEqual(vocab.terms);
    expect(back.index.get('𝐀𝐁')).toBe(3);
  });

  it('rejects documents that are not vocabularies, naming the source and field', () => {
    const doc = JSON.parse(vocabularyToJson(vocab)) as Record<string, unknown>;
    const bad = (patch: Record<string, unknown>) => JSON.stringify({ ...doc, ...patch });
    expect(() => vocabularyFromJson('{', 'v.json')).toThrow(/^v\.json: not valid JSON/);
    expect(() => vocabularyFromJson('[]', 'v.json')).toThrow(/v\.json: field "format"/);
    expect(() => vocabularyFromJson(bad({ format: 'other' }), 'v.json')).toThrow(/field "format" is "other"/);
    expect(() => vocabularyFromJson(bad({ version: 2 }), 'v.json')).toThrow(/field "version" is 2, expected 1/);
    expect(() => vocabularyFromJson(bad({ analyzer: { lowercase: false } }), 'v.json')).toThrow(/field "analyzer"/);
    expect(() => vocabularyFromJson(bad({ terms: 'aa' }), 'v.json')).toThrow(/field "terms" must be an array/);
    expect(() => vocabularyFromJson(bad({ terms: [] }), 'v.json')).toThrow(/empty vocabulary/);
    expect(() => vocabularyFromJson(bad({ terms: ['bb', 'aa'] }), 'v.json')).toThrow(/terms 0 and 1 \("bb", "aa"\) are not distinct and in code-point order/);
    expect(() => vocabularyFromJson(bad({ terms: ['aa', 'aa'] }), 'v.json')).toThrow(/not distinct/);
    expect(() => vocabularyFromJson(bad({ terms: ['aa', 'b c'] }), 'v.json')).toThrow(/term 1 "b c" is not a token/);
    expect(() => vocabularyFromJson(bad({ terms: ['aa', 7] }), 'v.json')).toThrow(/term 1 7 is not a token/);
  });
});
