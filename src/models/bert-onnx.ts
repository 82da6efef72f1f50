/**
 * A BERT encoder (embeddings, post-LayerNorm transformer layers, exact GELU feed-forward) as an ONNX graph, laid out
 * like a Hugging Face optimum feature-extraction export: inputs input_ids, attention_mask, token_type_ids (int64
 * [batch, sequence]); output last_hidden_state (float [batch, sequence, hidden]). The weights come from a real
 * checkpoint (`textshift models import`) or a random generator (test models); the graph is the same.
 *
 * With `quantize: 'int8'` the six Linear layers of each transformer layer keep int8 weights (per-column scales, see
 * quantize.ts) and quantize their input at run time: DynamicQuantizeLinear → MatMulInteger → Cast → Mul(scales) →
 * Add(bias), the pattern ONNX Runtime fuses into DynamicQuantizeMatMul or MatMulIntegerToFloat (u8×s8 integer GEMMs,
 * VNNI where the CPU has it). Embeddings, LayerNorm, attention scores, softmax and GELU stay float32.
 */
import { InternalError, InvalidDataError } from '../errors/index.js';
import { bertWeightShapes, type BertArchitecture, type BertWeights } from './bert-config.js';
import { DataType, encodeOnnxModel, type AttributeValue, type OnnxInitializer, type OnnxNode } from './onnx-proto.js';
import { quantizeLinearWeight, type Quantization } from './quantize.js';

/** ONNX default-domain opset of the generated graph (17 is the first with LayerNormalization). */
export const BERT_ONNX_OPSET = 17;

/** A single ONNX protobuf cannot exceed 2 GiB; weights beyond that need external data files, which we do not write. */
const MAX_INITIALIZER_BYTES = 2 ** 31 - 2 ** 24;

/** How to write the graph. */
export interface BertOnnxOptions {
  /** Store the Linear weights quantized (default: float32 throughout). */
  quantize?: Quantization;
}

/** Builds the ONNX model bytes from the architecture and its weights (checked against bertWeightShapes). */
export function buildBertOnnx(arch: BertArchitecture, weights: BertWeights, producer: string, options: BertOnnxOptions = {}): Uint8Array {
  const shapes = bertWeightShapes(arch);
  let bytes = 0;
  for (const [name, shape] of shapes) {
    const w = weights.get(name);
    const size = shape.reduce((a, b) => a * b, 1);
    if (!w) throw new InternalError(`BERT weights lack ${name}`);
    if (w.length !== size) throw new InternalError(`BERT weight ${name} has ${w.length} values, expected [${shape.join(', ')}]`);
    bytes += 4 * size;
  }
  if (bytes > MAX_INITIALIZER_BYTES) {
    throw new InvalidDataError(`the model's weights are ${bytes} bytes, more than one ONNX file holds (2 GiB; external data is not supported)`);
  }
  const g = new GraphBuilder(weights, shapes, options.quantize);
  const H = arch.hiddenSize;
  const headDim = H / arch.numHeads;

  // Embeddings: word + token type + absolute position (rows 0..seq-1 of the table), then LayerNorm.
  const word = g.op('Gather', [g.weight('embeddings.word_embeddings.weight'), 'input_ids']);
  const type = g.op('Gather', [g.weight('embeddings.token_type_embeddings.weight'), 'token_type_ids']);
  const seqLen = g.op('Shape', ['input_ids'], { start: { i: 1 }, end: { i: 2 } });
  const positions = g.op('Slice', [g.weight('embeddings.position_embeddings.weight'), g.int64s('zero', [0]), seqLen, g.int64s('zero', [0])]);
  let x = g.layerNorm('embeddings.LayerNorm', g.op('Add', [g.op('Add', [word, type]), positions]), arch.layerNormEps);

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
      g.op('Transpose', [g.op('Reshape', [g.linear(`${p}.attention.self.${name}`, x), splitHeads])], { perm: { ints: perm } });
    const q = heads('query', [0, 2, 1, 3]); // [b, h, s, d]
    const k = heads('key', [0, 2, 3, 1]); // [b, h, d, s]
    const v = heads('value', [0, 2, 1, 3]);
    const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q, k]), scale]), bias]);
    const probs = g.op('Softmax', [scores], { axis: { i: -1 } });
    const context = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [probs, v])], { perm: { ints: [0, 2, 1, 3] } }), mergeHeads]);
    const attended = g.op('Add', [g.linear(`${p}.attention.output.dense`, context), x]);
    x = g.layerNorm(`${p}.attention.output.LayerNorm`, attended, arch.layerNormEps);

    const up = g.linear(`${p}.intermediate.dense`, x);
    // Exact GELU: 0.5·u·(1 + erf(u/√2)), the form ONNX Runtime fuses into its Gelu kernel.
    const erf = g.op('Erf', [g.op('Div', [up, g.float('sqrt2', Math.SQRT2)])]);
    const gelu = g.op('Mul', [g.op('Mul', [up, g.float('half', 0.5)]), g.op('Add', [erf, g.float('one', 1)])]);
    const down = g.op('Add', [g.linear(`${p}.output.dense`, gelu), x]);
    x = g.layerNorm(`${p}.output.LayerNorm`, down, arch.layerNormEps);
  }
  g.nodes.push({ opType: 'Identity', inputs: [x], outputs: ['last_hidden_state'], name: 'output' });

  const tokens = (name: string) => ({ name, elemType: DataType.INT64, shape: ['batch_size', 'sequence_length'] });
  return encodeOnnxModel({
    graphName: 'bert',
    producer,
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

  constructor(
    private readonly weights: BertWeights,
    private readonly shapes: ReadonlyMap<string, number[]>,
    private readonly quantize: Quantization | undefined,
  ) {}

  /** Adds a node with one output and returns the output's name. */
  op(opType: string, inputs: string[], attributes?: Record<string, AttributeValue>): string {
    return this.opN(opType, inputs, 1, attributes)[0]!;
  }

  /** Adds a node with `count` outputs and returns their names. */
  opN(opType: string, inputs: string[], count: number, attributes?: Record<string, AttributeValue>): string[] {
    const outputs = Array.from({ length: count }, () => `n${this.counter++}`);
    this.nodes.push({ opType, inputs, outputs, name: `${opType}_${outputs[0]}`, ...(attributes ? { attributes } : {}) });
    return outputs;
  }

  /** A checkpoint tensor as an initializer of the same name and shape. */
  weight(name: string): string {
    this.initializers.push({ name, dims: this.shapes.get(name)!, data: this.weights.get(name)! });
    return name;
  }

  /** x·Wᵀ + b for a PyTorch Linear (W [out, in]); W is stored transposed, [in, out], so a plain MatMul applies it. */
  linear(prefix: string, x: string): string {
    const [out, inSize] = this.shapes.get(`${prefix}.weight`)!;
    const w = this.weights.get(`${prefix}.weight`)!;
    if (this.quantize === 'int8') {
      const q = quantizeLinearWeight(w, out!, inSize!);
      this.initializers.push({ name: `${prefix}.weight_int8`, dims: [inSize!, out!], data: q.values });
      this.initializers.push({ name: `${prefix}.weight_scale`, dims: [out!], data: q.scales });
      // One DynamicQuantizeLinear per MatMul; ONNX Runtime merges the identical ones of Q, K and V (one input) into
      // one feeding three MatMulIntegerToFloat, and fuses each other one with its MatMul into DynamicQuantizeMatMul.
      const [xq, xScale, xZero] = this.opN('DynamicQuantizeLinear', [x], 3) as [string, string, string];
      const product = this.op('Cast', [this.op('MatMulInteger', [xq, `${prefix}.weight_int8`, xZero])], { to: { i: DataType.FLOAT } });
      const scaled = this.op('Mul', [product, this.op('Mul', [xScale, `${prefix}.weight_scale`])]);
      return this.op('Add', [scaled, this.weight(`${prefix}.bias`)]);
    }
    const t = new Float32Array(w.length);
    for (let o = 0; o < out!; o++) for (let i = 0; i < inSize!; i++) t[i * out! + o] = w[o * inSize! + i]!;
    this.initializers.push({ name: `${prefix}.weight`, dims: [inSize!, out!], data: t });
    return this.op('Add', [this.op('MatMul', [x, `${prefix}.weight`]), this.weight(`${prefix}.bias`)]);
  }

  /** LayerNormalization over the last axis with the checkpoint's scale and shift. */
  layerNorm(prefix: string, x: string, eps: number): string {
    return this.op('LayerNormalization', [x, this.weight(`${prefix}.weight`), this.weight(`${prefix}.bias`)], { axis: { i: -1 }, epsilon: { f: eps } });
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
}
