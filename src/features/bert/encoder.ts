import { availableParallelism } from 'node:os';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { poolHiddenStates, type Pooling } from './pooling.js';
import { DEFAULT_MAX_LENGTH, loadBertTokenizer, padBatch, type BertBatch, type BertTokenizer } from './tokenizer.js';
import { ConfigError, InvalidDataError, InvalidInputError, MissingInputError } from '../../errors/index.js';

// Loaded on first use: bundlers would otherwise hoist the native module into every process that imports this file.
// A failed load is not kept, so a later call tries again.
let ortModule: Promise<typeof Ort> | undefined;
const loadOrt = (): Promise<typeof Ort> =>
  (ortModule ??= import('onnxruntime-node').catch((err: unknown) => {
    ortModule = undefined;
    throw err;
  }));

/** Default texts per ONNX run. */
export const DEFAULT_BATCH_SIZE = 32;

/**
 * Default ONNX Runtime intra-op threads: every core this process may use (a Lambda function gets the vCPUs of its
 * memory size, e.g. 6 at 10,240 MB; our machines have 2 cores).
 */
export const DEFAULT_THREADS = availableParallelism();

/** Default cap on padded token positions per ONNX run (bounds attention memory for 512-token texts). */
export const DEFAULT_MAX_BATCH_TOKENS = 8192;

/** How to open a model folder. */
export interface BertEncoderOptions {
  /** ONNX Runtime intra-op threads. */
  threads?: number;
  /**
   * Let idle ONNX Runtime threads spin-wait for work. Off by default: measured on 2 cores, it gave no wall-time
   * gain when idle and cost ~1.5× CPU per text when the cores were shared (tokenization, pooling, other workers).
   */
  spinWait?: boolean;
}

/** How to encode a list of texts. */
export interface EncodeOptions<P extends Pooling = Pooling> {
  /** Poolings to compute, all from the same pass over each text (one matrix each). */
  poolings: readonly P[];
  /** Truncation length in tokens, [CLS] and [SEP] included. */
  maxLength?: number;
  /** Most texts per ONNX run. */
  batchSize?: number;
  /** Most padded token positions (rows × padded length) per ONNX run; a single longer text still runs alone. */
  maxBatchTokens?: number;
  /** Batch texts of similar token length together (cuts padding); off = input order, as naive code does. */
  bucketing?: boolean;
  /** Called after each batch with the number of texts encoded so far. */
  onProgress?: (done: number, total: number) => void;
}

/** Embeddings in input order plus what it took to compute them. */
export interface EncodeResult<P extends Pooling = Pooling> {
  /** Per requested pooling, row-major [rows × dim]. */
  embeddings: Record<P, Float32Array>;
  rows: number;
  dim: number;
  /** Real tokens fed to the model ([CLS]/[SEP] included, padding excluded). */
  tokens: number;
  /** Token positions computed including padding (rows × padded length, summed over batches). */
  paddedTokens: number;
}

/** A BERT-family ONNX encoder from a Hugging Face optimum feature-extraction folder. */
export class BertEncoder {
  private constructor(
    readonly modelDir: string,
    readonly hiddenSize: number,
    readonly maxPositions: number,
    readonly tokenizer: BertTokenizer,
    private readonly session: Ort.InferenceSession,
    private readonly ort: typeof Ort,
  ) {}

  /** Opens `<modelDir>/onnx/model.onnx` with its config.json and tokenizer. */
  static async load(modelDir: string, options: BertEncoderOptions = {}): Promise<BertEncoder> {
    const threads = options.threads ?? DEFAULT_THREADS;
    if (!Number.isInteger(threads) || threads < 1) throw new InvalidInputError(`threads must be a positive integer, got ${threads}`);
    const { hiddenSize, maxPositions } = await readModelConfig(modelDir);
    const tokenizer = await loadBertTokenizer(modelDir);
    const modelPath = join(modelDir, 'onnx', 'model.onnx');
    const ort = await loadOrt();
    let session: Ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(modelPath, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        extra: { session: { intra_op: { allow_spinning: options.spinWait ? '1' : '0' } } },
      });
    } catch (err) {
      throw new InvalidDataError(`${modelPath}: cannot load the ONNX model (${(err as Error).message})`);
    }
    for (const name of ['input_ids', 'attention_mask']) {
      if (!session.inputNames.includes(name)) {
        await session.release();
        throw new InvalidDataError(`${modelPath}: expected an input named ${name}, found ${session.inputNames.join(', ')}`);
      }
    }
    if (!session.outputNames.includes('last_hidden_state')) {
      await session.release();
      throw new InvalidDataError(
        `${modelPath}: expected an output named last_hidden_state (optimum feature-extraction export), found ${session.outputNames.join(', ')}`,
      );
    }
    return new BertEncoder(modelDir, hiddenSize, maxPositions, tokenizer, session, ort);
  }

  /** 512, or the model's position limit if smaller. */
  get defaultMaxLength(): number {
    return Math.min(DEFAULT_MAX_LENGTH, this.maxPositions);
  }

  /** Token ids of each text ([CLS] … [SEP], truncated to maxLength). */
  tokenize(texts: readonly string[], maxLength = this.defaultMaxLength): number[][] {
    this.checkMaxLength(maxLength);
    return texts.map((t) => this.tokenizer.encode(t, maxLength));
  }

  /** Embeds each text (one row per text, input order) with every requested pooling, from one pass of the model. */
  async encode<P extends Pooling>(texts: readonly string[], options: EncodeOptions<P>): Promise<EncodeResult<P>> {
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    const maxBatchTokens = options.maxBatchTokens ?? DEFAULT_MAX_BATCH_TOKENS;
    for (const [name, value] of [
      ['batch size', batchSize],
      ['max batch tokens', maxBatchTokens],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) throw new InvalidInputError(`${name} must be a positive integer, got ${value}`);
    }
    const sequences = this.tokenize(texts, options.maxLength ?? this.defaultMaxLength);
    const order = sequences.map((_, i) => i);
    // Stable sort by length: batches of near-equal length pad little; rows go back to input order when pooled.
    if (options.bucketing ?? true) order.sort((a, b) => sequences[a]!.length - sequences[b]!.length);
    const dim = this.hiddenSize;
    const embeddings = Object.fromEntries(options.poolings.map((p) => [p, new Float32Array(texts.length * dim)])) as Record<P, Float32Array>;
    let tokens = 0;
    let paddedTokens = 0;
    let start = 0;
    while (start < order.length) {
      let end = start + 1;
      let longest = sequences[order[start]!]!.length;
      while (end < order.length && end - start < batchSize) {
        const next = Math.max(longest, sequences[order[end]!]!.length);
        if ((end - start + 1) * next > maxBatchTokens) break;
        longest = next;
        end++;
      }
      const rows = order.slice(start, end);
      const batch = padBatch(
        rows.map((i) => sequences[i]!),
        this.tokenizer.padId,
      );
      const hidden = await this.run(batch);
      poolHiddenStates(hidden, batch, dim, embeddings, rows);
      tokens += batch.lengths.reduce((a, b) => a + b, 0);
      paddedTokens += batch.batchSize * batch.seqLength;
      start = end;
      options.onProgress?.(start, order.length);
    }
    return { embeddings, rows: texts.length, dim, tokens, paddedTokens };
  }

  /** Frees the ONNX Runtime session. */
  async close(): Promise<void> {
    await this.session.release();
  }

  private async run(batch: BertBatch): Promise<Float32Array> {
    const shape = [batch.batchSize, batch.seqLength];
    const { Tensor } = this.ort;
    const feeds: Record<string, Ort.Tensor> = {
      input_ids: new Tensor('int64', batch.inputIds, shape),
      attention_mask: new Tensor('int64', batch.attentionMask, shape),
    };
    // DistilBERT-style exports have no token_type_ids input.
    if (this.session.inputNames.includes('token_type_ids')) {
      feeds['token_type_ids'] = new Tensor('int64', batch.tokenTypeIds, shape);
    }
    const output = (await this.session.run(feeds, ['last_hidden_state']))['last_hidden_state'];
    const expected = [batch.batchSize, batch.seqLength, this.hiddenSize];
    if (!output || output.type !== 'float32' || output.dims.join() !== expected.join()) {
      throw new InvalidDataError(
        `${this.modelDir}: last_hidden_state is ${output?.type} [${output?.dims.join(', ')}], expected float32 [${expected.join(', ')}] (hidden_size from config.json)`,
      );
    }
    return output.data as Float32Array;
  }

  private checkMaxLength(maxLength: number): void {
    if (!Number.isInteger(maxLength) || maxLength < 2 || maxLength > this.maxPositions) {
      throw new ConfigError(
        `max length must be an integer from 2 to ${this.maxPositions} (max_position_embeddings of ${this.modelDir}), got ${maxLength}`,
      );
    }
  }
}

/** hidden_size and max_position_embeddings from a model folder's config.json. */
async function readModelConfig(modelDir: string): Promise<{ hiddenSize: number; maxPositions: number }> {
  const path = join(modelDir, 'config.json');
  let config: unknown;
  try {
    config = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new MissingInputError(`${path}: not found (a Hugging Face model folder has config.json beside onnx/model.onnx)`);
    }
    throw new InvalidDataError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  const field = (name: string, fallback?: number): number => {
    const value = (config as Record<string, unknown>)[name] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw new InvalidDataError(`${path}: field ${name} must be a positive integer, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  if (typeof config !== 'object' || config === null) throw new InvalidDataError(`${path}: expected a JSON object`);
  return { hiddenSize: field('hidden_size'), maxPositions: field('max_position_embeddings', DEFAULT_MAX_LENGTH) };
}
