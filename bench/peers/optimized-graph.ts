/**
 * Writes the graph onnxruntime-node actually runs for a model: `optimizedModelFilePath` after the session's graph
 * optimizations at the level the encoder uses ('all'), and prints how many nodes of each op type it holds, which
 * shows which fusions fired (e.g. DynamicQuantizeMatMul in an int8 model).
 *   npx tsx bench/peers/optimized-graph.ts MODEL.onnx OUT.onnx
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { countOnnxOps } from '../../src/models/onnx-proto.js';

const [input, output] = process.argv.slice(2);
if (!input || !output) throw new Error('usage: optimized-graph.ts MODEL.onnx OUT.onnx');
const session = await ort.InferenceSession.create(input, { graphOptimizationLevel: 'all', optimizedModelFilePath: output, intraOpNumThreads: 1 });
await session.release();
const counts = [...countOnnxOps(readFileSync(output))].sort((a, b) => b[1] - a[1]);
process.stdout.write(`wrote ${output}: ${counts.map(([op, n]) => `${op} ${n}`).join(', ')}\n`);
