import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { parseVocabTxt } from './vocab.js';
import { InvalidDataError, InvalidInputError, MissingInputError } from '../../errors/index.js';

/**
 * BERT WordPiece tokenization for a Hugging Face model folder. The text pipeline (BertNormalizer: clean text,
 * CJK splitting, lowercase, NFD + accent stripping; BertPreTokenizer: whitespace and punctuation split; greedy
 * WordPiece with `##` and [UNK] past 100 chars) is Hugging Face's own `@huggingface/tokenizers` JS port; this
 * module adds loading from `tokenizer.json` or a bare `vocab.txt`, [CLS]/[SEP] with truncation, and padding.
 */

/** Default truncation length, BERT's position limit. */
export const DEFAULT_MAX_LENGTH = 512;

/** A padded batch of token ids, ready for a BERT ONNX session (row-major [batchSize × seqLength]). */
export interface BertBatch {
  readonly batchSize: number;
  readonly seqLength: number;
  readonly inputIds: BigInt64Array;
  readonly attentionMask: BigInt64Array;
  readonly tokenTypeIds: BigInt64Array;
  /** Real (unpadded) length of each row, [CLS] and [SEP] included. */
  readonly lengths: readonly number[];
}

/** A loaded BERT tokenizer. */
export interface BertTokenizer {
  readonly vocabSize: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  /** Token ids of one text: [CLS] + WordPiece ids truncated to maxLength - 2 + [SEP]. */
  encode(text: string, maxLength?: number): number[];
}

interface TokenizerFiles {
  /** The tokenizer.json object (given, or built from vocab.txt). */
  readonly json: Record<string, unknown>;
  /** tokenizer_config.json, or {} when absent. */
  readonly config: Record<string, unknown>;
  readonly source: string;
}

/** Loads the tokenizer of a model folder: `tokenizer.json` if present, else `vocab.txt` (+ tokenizer_config.json). */
export async function loadBertTokenizer(modelDir: string): Promise<BertTokenizer> {
  return createBertTokenizer(await readTokenizerFiles(modelDir));
}

/** Builds a tokenizer from a vocab.txt body with bert-base-uncased settings (lowercase, strip accents). */
export function bertTokenizerFromVocabTxt(body: string, source = 'vocab.txt'): BertTokenizer {
  return createBertTokenizer({ json: tokenizerJsonForVocab(parseVocabTxt(body, source), {}), config: {}, source });
}

/** Pads token-id sequences to the longest one; attention mask 1 on real tokens, token_type_ids all 0. */
export function padBatch(sequences: readonly (readonly number[])[], padId: number): BertBatch {
  if (sequences.length === 0) throw new InvalidInputError('padBatch: no sequences to pad');
  const seqLength = Math.max(...sequences.map((s) => s.length));
  const batchSize = sequences.length;
  const inputIds = new BigInt64Array(batchSize * seqLength).fill(BigInt(padId));
  const attentionMask = new BigInt64Array(batchSize * seqLength);
  sequences.forEach((ids, row) => {
    const base = row * seqLength;
    for (let i = 0; i < ids.length; i++) {
      inputIds[base + i] = BigInt(ids[i]!);
      attentionMask[base + i] = 1n;
    }
  });
  return {
    batchSize,
    seqLength,
    inputIds,
    attentionMask,
    tokenTypeIds: new BigInt64Array(batchSize * seqLength),
    lengths: sequences.map((s) => s.length),
  };
}

async function readTokenizerFiles(modelDir: string): Promise<TokenizerFiles> {
  const configPath = join(modelDir, 'tokenizer_config.json');
  const config = (await readJsonObject(configPath)) ?? {};
  const jsonPath = join(modelDir, 'tokenizer.json');
  const json = await readJsonObject(jsonPath);
  if (json !== undefined) {
    const model = json['model'];
    if (!isObject(model) || model['type'] !== 'WordPiece' || !isObject(model['vocab'])) {
      throw new InvalidDataError(`${jsonPath}: expected a WordPiece tokenizer (model.type "WordPiece" with a model.vocab object)`);
    }
    return { json, config, source: jsonPath };
  }
  const vocabPath = join(modelDir, 'vocab.txt');
  let body: string;
  try {
    body = await readFile(vocabPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new MissingInputError(`${modelDir}: no tokenizer found (expected tokenizer.json or vocab.txt in the model folder)`);
    }
    throw err;
  }
  return { json: tokenizerJsonForVocab(parseVocabTxt(body, vocabPath), config), config, source: vocabPath };
}

/** The tokenizer.json that Hugging Face's BertTokenizerFast builds from a vocab.txt and its tokenizer_config. */
function tokenizerJsonForVocab(vocab: Map<string, number>, config: Record<string, unknown>): Record<string, unknown> {
  const lowercase = config['do_lower_case'] ?? true;
  const specials = [
    specialToken(config, 'pad_token', '[PAD]'),
    specialToken(config, 'unk_token', '[UNK]'),
    specialToken(config, 'cls_token', '[CLS]'),
    specialToken(config, 'sep_token', '[SEP]'),
    specialToken(config, 'mask_token', '[MASK]'),
  ];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials
      .filter((t) => vocab.has(t))
      .map((t) => ({
        id: vocab.get(t),
        content: t,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: config['tokenize_chinese_chars'] ?? true,
      strip_accents: config['strip_accents'] ?? null,
      lowercase,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: specials[1],
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab),
    },
  };
}

/**
 * CJK ideographs outside the BMP (extensions B-F, compatibility supplement), which BERT's normalizer isolates as
 * words but @huggingface/tokenizers 0.2.0 misses (it tests UTF-16 code units); we isolate them before encoding.
 */
const ASTRAL_CJK = /[\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B820}-\u{2CEAF}\u{2F800}-\u{2FA1F}]/gu;

function createBertTokenizer({ json, config, source }: TokenizerFiles): BertTokenizer {
  const tokenizer = new Tokenizer(json, config);
  const normalizer = json['normalizer'];
  const isolateAstralCjk =
    isObject(normalizer) && normalizer['type'] === 'BertNormalizer' && normalizer['handle_chinese_chars'] !== false;
  const idOf = (key: string, fallback: string): number => {
    const token = specialToken(config, key, fallback);
    const id = tokenizer.token_to_id(token);
    if (id === undefined) throw new InvalidDataError(`${source}: the vocabulary has no ${key} "${token}"`);
    return id;
  };
  const clsId = idOf('cls_token', '[CLS]');
  const sepId = idOf('sep_token', '[SEP]');
  const padId = idOf('pad_token', '[PAD]');
  return {
    vocabSize: tokenizer.get_vocab(true).size,
    clsId,
    sepId,
    padId,
    encode(text: string, maxLength = DEFAULT_MAX_LENGTH): number[] {
      if (!Number.isInteger(maxLength) || maxLength < 2) {
        throw new InvalidInputError(`max length must be an integer >= 2 (room for [CLS] and [SEP]), got ${maxLength}`);
      }
      // Special tokens are added here rather than by the tokenizer's post-processor so truncation keeps [SEP].
      const input = isolateAstralCjk ? text.replace(ASTRAL_CJK, ' $& ') : text;
      const ids = tokenizer.encode(input, { add_special_tokens: false }).ids;
      return [clsId, ...ids.slice(0, maxLength - 2), sepId];
    },
  };
}

/** A special token's text from tokenizer_config.json (plain string or {content}), else the BERT default. */
function specialToken(config: Record<string, unknown>, key: string, fallback: string): string {
  const value = config[key];
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value['content'] === 'string') return value['content'];
  return fallback;
}

async function readJsonObject(path: string): Promise<Record<string, unknown> | undefined> {
  let body: string;
  try {
    body = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new InvalidDataError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(parsed)) throw new InvalidDataError(`${path}: expected a JSON object`);
  return parsed;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
