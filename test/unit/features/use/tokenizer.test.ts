import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import { useModelDir } from '../../../../src/features/use/model-files.js';
import { UseTokenizer, type VocabEntry } from '../../../../src/features/use/tokenizer.js';

const TEXTS = [
  '',
  ' ',
  'a',
  'Hello world!',
  'a great movie',
  'an excellent film',
  "it 's a charming and often affecting journey .",
  'This movie was TERRIBLE... I want my 2 hours back :( <br /><br />Seriously, 1/10.',
  'Amélie, naïve café, façade: Ångström — “quoted” ‘text’ … ﬁn ① ＡＢＣ',
  '日本語のテキストと한국어 and русский текст',
  'emoji 🎉🎉 and unknown \u0008 control \u0010 chars\tand\ttabs',
  '   leading and trailing   spaces   ',
  'http://example.com/path?q=1 :-) :) ): ::',
  'supercalifragilisticexpialidocious antidisestablishmentarianism',
  'x'.repeat(300),
  // Repeated letters segment with equal-score ties: upstream keeps the later candidate.
  'it was just sooooo tired and loooong, sooo',
];

let vocabulary: VocabEntry[];
beforeAll(() => {
  vocabulary = JSON.parse(readFileSync(join(useModelDir(), 'vocab.json'), 'utf8')) as VocabEntry[];
});

/** Ids from the tokenizer inside @energetic-ai/embeddings, run in a worker so its bundled tfjs stays out of this process. */
function packageIds(texts: string[]): Promise<number[][]> {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
const { EmbeddingsModel } = require('@energetic-ai/embeddings');
const model = new EmbeddingsModel({ vocabulary: workerData.vocabulary, model: null });
parentPort.postMessage(workerData.texts.map((t) => model.tokenizer.encode(t)));`,
    { eval: true, workerData: { vocabulary, texts } },
  );
  return new Promise<number[][]>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  }).finally(() => worker.terminate());
}

describe('UseTokenizer (port of the USE-lite SentencePiece tokenizer)', () => {
  it('gives the same ids as the tokenizer in @energetic-ai/embeddings', async () => {
    const tokenizer = new UseTokenizer(vocabulary);
    const expected = await packageIds(TEXTS);
    expect(TEXTS.map((t) => tokenizer.encode(t))).toEqual(expected);
  });

  it('encodes known strings to pinned ids (catches a changed vocabulary too)', () => {
    const tokenizer = new UseTokenizer(vocabulary);
    expect(tokenizer.encode('Hello world!')).toEqual([341, 4125, 311, 78]);
    expect(tokenizer.encode('a great movie')).toEqual([11, 318, 888]);
    expect(tokenizer.encode('')).toEqual([]);
  });

  it('maps unknown characters to id 0 and collapses a run of them to one', () => {
    const tokenizer = new UseTokenizer(vocabulary);
    const ids = tokenizer.encode('a 🎉🎉🎉 b');
    expect(ids.filter((id) => id === 0)).toHaveLength(1);
  });
});
