/**
 * A BERT encoder (embeddings, post-LayerNorm transformer layers, GELU feed-forward) as an ONNX graph with seeded
 * random weights, laid out like a Hugging Face optimum feature-extraction export: inputs input_ids,
 * attention_mask, token_type_ids (int64 [batch, sequence]); output last_hidden_state (float [batch, sequence,
 * hidden]). Used to test and benchmark the real model-loading code without downloadable weights.
 */
import { MT19937 } from '../../src/random/mt19937.js';
import { DataType, encodeOnnxModel, type AttributeValue, type OnnxInitializer, type OnnxNode } from './onnx-proto.js';

/** The BERT config.json fields that shape the graph. */
export interface BertArchitecture {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  typeVocabSize: number;
  layerNormEps: number;
}

/** ONNX default-domain opset of the generated graph (17 is the first with LayerNormalization). */
export const BERT_ONNX_OPSET = 17;

/** Builds the ONNX model bytes; the same architecture and seed always give the same bytes. */
export function buildBertOnnx(arch: BertArchitecture, seed: number): Uint8Array {
  if (arch.hiddenSize % arch.numHeads !== 0) {
    throw new Error(`hidden size ${arch.hiddenSize} is not divisible by ${arch.numHeads} heads`);
  }
  const g = new GraphBuilder(MT19937.fromSeed(seed));
  const H = arch.hiddenSize;
  const headDim = H / arch.numHeads;
  const std = 0.02; // BERT's initializer_range

  // Embeddings: word + token type + absolute position (rows 0..seq-1 of the table), then LayerNorm.
  const word = g.op('Gather', [g.weight('embeddings.word_embeddings.weight', [arch.vocabSize, H], std), 'input_ids']);
  const type = g.op('Gather', [
    g.weight('embeddings.token_type_embeddings.weight', [arch.typeVocabSize, H], std),
    'token_type_ids',
  ]);
  const seqLen = g.op('Shape', ['input_ids'], { start: { i: 1 }, end: { i: 2 } });
  const positions = g.op('Slice', [
    g.weight('embeddings.position_embeddings.weight', [arch.maxPositions, H], std),
    g.int64s('zero', [0]),
    seqLen,
    g.int64s('zero', [0]),
  ]);
  let x = g.layerNorm('embeddings.LayerNorm', g.op('Add', [g.op('Add', [word, type]), positions]), H, arch.layerNormEps);

  // Additive attention bias [batch, 1, 1, seq]: 0 on real tokens, float32 min on padding (as transformers does).
  const mask = g.op('Cast', ['attention_mask'], { to: { i: DataType.FLOAT } });
  const inverted = g.op('Sub', [g.float('one', 1), mask]);
  const bias = g.op('Unsqueeze', [g.op('Mul', [inverted, g.float('float32_min', -3.4028234663852886e38)]), g.int64s('axes_1_2', [1, 2])]);
  const splitHeads = g.int64s('split_heads_shape', [0, 0, arch.numHeads, headDim]);
  const mergeHeads = g.int64s('merge_heads_shape', [0, 0, H]);
  const scale = g.float('attention_scale', 1 / Math.sqrt(headDim));

  for (let l = 0; l < arch.numLayers; l++) {
    const p = `encoder.layer.${l}`;
    const heads = (name: string, perm: number[]): string =>
      g.op('Transpose', [g.op('Reshape', [g.dense(`${p}.attention.self.${name}`, x, H, H, std), splitHeads])], {
        perm: { ints: perm },
      });
    const q = heads('query', [0, 2, 1, 3]); // [b, h, s, d]
    const k = heads('key', [0, 2, 3, 1]); // [b, h, d, s]
    const v = heads('value', [0, 2, 1, 3]);
    const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q, k]), scale]), bias]);
    const probs = g.op('Softmax', [scores], { axis: { i: -1 } });
    const context = g.op('Reshape', [
      g.op('Transpose', [g.op('MatMul', [probs, v])], { perm: { ints: [0, 2, 1, 3] } }),
      mergeHeads,
    ]);
    const attended = g.op('Add', [g.dense(`${p}.attention.output.dense`, context, H, H, std), x]);
    x = g.layerNorm(`${p}.attention.output.LayerNorm`, attended, H, arch.layerNormEps);

    const up = g.dense(`${p}.intermediate.dense`, x, H, arch.intermediateSize, std);
    // Exact GELU: 0.5·u·(1 + erf(u/√2)), the form ONNX Runtime fuses into its Gelu kernel.
    const erf = g.op('Erf', [g.op('Div', [up, g.float('sqrt2', Math.SQRT2)])]);
    const gelu = g.op('Mul', [g.op('Mul', [up, g.float('half', 0.5)]), g.op('Add', [erf, g.float('one', 1)])]);
    const down = g.op('Add', [g.dense(`${p}.output.dense`, gelu, arch.intermediateSize, H, std), x]);
    x = g.layerNorm(`${p}.output.LayerNorm`, down, H, arch.layerNormEps);
  }
  g.nodes.push({ opType: 'Identity', inputs: [x], outputs: ['last_hidden_state'], name: 'output' });

  const tokens = (name: string) => ({ name, elemType: DataType.INT64, shape: ['batch_size', 'sequence_length'] });
  return encodeOnnxModel({
    graphName: 'bert',
    producer: 'textshift make-test-model',
    opset: BERT_ONNX_OPSET,
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: [tokens('input_ids'), tokens('attention_mask'), tokens('token_type_ids')],
    outputs: [{ name: 'last_hidden_state', elemType: DataType.FLOAT, shape: ['batch_size', 'sequence_length', H] }],
  });
}

/** Accumulates nodes and initializers, naming intermediate values n0, n1, ... */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxInitializer[] = [];
  private readonly constants = new Set<string>();
  private counter = 0;

  constructor(private readonly rng: MT19937) {}

  /** Adds a node with one output and returns the output's name. */
  op(opType: string, inputs: string[], attributes?: Record<string, AttributeValue>): string {
    const output = `n${this.counter++}`;
    this.nodes.push({ opType, inputs, outputs: [output], name: `${opType}_${output}`, ...(attributes ? { attributes } : {}) });
    return output;
  }

  /** A weight tensor drawn from N(0, std²). */
  weight(name: string, dims: number[], std: number): string {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = this.normal() * std;
    this.initializers.push({ name, dims, data });
    return name;
  }

  /** x·W + b with W [inSize, outSize] (the transposed torch Linear weight, as exporters store it). */
  dense(prefix: string, x: string, inSize: number, outSize: number, std: number): string {
    const w = this.weight(`${prefix}.weight`, [inSize, outSize], std);
    const b = this.weight(`${prefix}.bias`, [outSize], std);
    return this.op('Add', [this.op('MatMul', [x, w]), b]);
  }

  /** LayerNormalization over the last axis; the scale is jittered around 1 so layers are not all alike. */
  layerNorm(prefix: string, x: string, size: number, eps: number): string {
    const gamma = new Float32Array(size);
    for (let i = 0; i < size; i++) gamma[i] = 1 + 0.1 * this.normal();
    this.initializers.push({ name: `${prefix}.weight`, dims: [size], data: gamma });
    const beta = this.weight(`${prefix}.bias`, [size], 0.02);
    return this.op('LayerNormalization', [x, `${prefix}.weight`, beta], { axis: { i: -1 }, epsilon: { f: eps } });
  }

  /** A scalar float constant (shared by name). */
  float(name: string, value: number): string {
    if (!this.constants.has(name)) {
      this.constants.add(name);
      this.initializers.push({ name, dims: [], data: Float32Array.of(value) });
    }
    return name;
  }

  /** A 1-D int64 constant (shared by name). */
  int64s(name: string, values: number[]): string {
    if (!this.constants.has(name)) {
      this.constants.add(name);
      this.initializers.push({ name, dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) });
    }
    return name;
  }

  /** Standard normal by Box-Muller on the seeded generator. */
  private normal(): number {
    const u = 1 - this.rng.nextDouble(); // (0, 1], so log is finite
    const v = this.rng.nextDouble();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}
