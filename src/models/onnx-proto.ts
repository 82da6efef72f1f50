/**
 * The subset of onnx.proto (ONNX IR 8) needed to write an inference graph with initializers, encoded with
 * protobufjs. Embedded rather than taken from the `onnx-proto` npm package, which pins protobufjs 6 and ONNX 1.10.
 * Field numbers are those of https://github.com/onnx/onnx/blob/main/onnx/onnx.proto.
 */
import { endianness } from 'node:os';
import protobuf from 'protobufjs';
import { InternalError } from '../errors/index.js';

const ONNX_PROTO_SUBSET = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; FLOATS = 6; INTS = 7; }
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  optional AttributeType type = 20;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
  optional string domain = 7;
}

message TensorShapeProto {
  message Dimension {
    oneof value { int64 dim_value = 1; string dim_param = 2; }
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value { Tensor tensor_type = 1; }
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
}

message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional string name = 8;
  optional bytes raw_data = 9;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}

message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
}
`;

/** ONNX TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT8: 3, INT64: 7 } as const;

/** ONNX AttributeProto.AttributeType values used here. */
export const AttributeType = { FLOAT: 1, INT: 2, INTS: 7 } as const;

/** A tensor dimension: a fixed size or a symbolic (dynamic) name. */
export type Dim = number | string;

/** An attribute value: a float, an int, or a list of ints. */
export type AttributeValue = { f: number } | { i: number } | { ints: number[] };

/** One graph node. */
export interface OnnxNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attributes?: Record<string, AttributeValue>;
}

/** A constant tensor stored in the graph (weights, quantized weights and small constants). */
export interface OnnxInitializer {
  name: string;
  dims: number[];
  data: Float32Array | Int8Array | BigInt64Array;
}

/** A graph input or output. */
export interface OnnxValueInfo {
  name: string;
  elemType: number;
  shape: Dim[];
}

/** A whole model: one graph plus the default-domain opset it targets. */
export interface OnnxModel {
  graphName: string;
  producer: string;
  opset: number;
  nodes: OnnxNode[];
  initializers: OnnxInitializer[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
}

const root = protobuf.parse(ONNX_PROTO_SUBSET, { keepCase: true }).root;
const ModelProto = root.lookupType('onnx.ModelProto');

/** Serialises a model to ONNX protobuf bytes (IR version 8). */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const message = {
    ir_version: 8,
    producer_name: model.producer,
    producer_version: '1',
    opset_import: [{ domain: '', version: model.opset }],
    graph: {
      name: model.graphName,
      node: model.nodes.map((n) => ({
        input: n.inputs,
        output: n.outputs,
        name: n.name,
        op_type: n.opType,
        domain: '',
        attribute: Object.entries(n.attributes ?? {}).map(([name, value]) => attribute(name, value)),
      })),
      initializer: model.initializers.map((t) => ({
        name: t.name,
        dims: t.dims,
        data_type: t.data instanceof Float32Array ? DataType.FLOAT : t.data instanceof Int8Array ? DataType.INT8 : DataType.INT64,
        raw_data: littleEndianBytes(t.data),
      })),
      input: model.inputs.map(valueInfo),
      output: model.outputs.map(valueInfo),
    },
  };
  const problem = ModelProto.verify(message);
  if (problem) throw new InternalError(`invalid ONNX model message: ${problem}`);
  return ModelProto.encode(ModelProto.fromObject(message)).finish();
}

/** How many nodes of each op type a model's graph holds (e.g. to see which fusions ONNX Runtime applied to a graph it saved). */
export function countOnnxOps(bytes: Uint8Array): Map<string, number> {
  const model = ModelProto.toObject(ModelProto.decode(bytes)) as { graph?: { node?: { op_type?: string }[] } };
  const counts = new Map<string, number>();
  for (const node of model.graph?.node ?? []) counts.set(node.op_type ?? '', (counts.get(node.op_type ?? '') ?? 0) + 1);
  return counts;
}

function attribute(name: string, value: AttributeValue): Record<string, unknown> {
  if ('f' in value) return { name, type: AttributeType.FLOAT, f: value.f };
  if ('i' in value) return { name, type: AttributeType.INT, i: value.i };
  return { name, type: AttributeType.INTS, ints: value.ints };
}

function valueInfo(v: OnnxValueInfo): Record<string, unknown> {
  return {
    name: v.name,
    type: {
      tensor_type: {
        elem_type: v.elemType,
        shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

/** ONNX raw_data is little-endian: the tensor's own bytes on little-endian hosts (no copy), else swapped element by element. */
function littleEndianBytes(data: Float32Array | Int8Array | BigInt64Array): Uint8Array {
  // Single bytes have no order to swap.
  if (endianness() === 'LE' || data instanceof Int8Array) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const bytes = new Uint8Array(data.length * data.BYTES_PER_ELEMENT);
  const view = new DataView(bytes.buffer);
  if (data instanceof Float32Array) data.forEach((x, i) => view.setFloat32(i * 4, x, true));
  else data.forEach((x, i) => view.setBigInt64(i * 8, x, true));
  return bytes;
}
