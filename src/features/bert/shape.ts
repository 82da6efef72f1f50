/**
 * The size of a BERT-family encoder as the planner needs it: how wide its vectors are and how much arithmetic one
 * token costs. Shards and prices scale with it, so a 6-layer, 384-wide MiniLM is not priced as bert-base.
 */

/** The dimensions that set an encoder's output width and its cost per token. */
export interface EncoderShape {
  hidden: number;
  layers: number;
  intermediate: number;
}

/** bert-base-uncased, the seed's encoder: what the measured throughput constants are stated for. */
export const BERT_BASE_SHAPE: EncoderShape = { hidden: 768, layers: 12, intermediate: 3072 };

/**
 * Multiply-add FLOPs (2 per MAC) of one token through the encoder in a sequence of `tokens`: per layer the Q, K, V
 * and output projections (4·h²), the feed-forward (2·h·i) and attention scores plus context (2·tokens·h).
 */
export function flopsPerToken(shape: EncoderShape, tokens: number): number {
  const { hidden: h, layers, intermediate: i } = shape;
  return 2 * layers * (4 * h * h + 2 * h * i + 2 * tokens * h);
}

/** How many times cheaper a token of `shape` is than a token of bert-base, at the same sequence length. */
export function speedupOverBertBase(shape: EncoderShape, tokens: number): number {
  return flopsPerToken(BERT_BASE_SHAPE, tokens) / flopsPerToken(shape, tokens);
}
