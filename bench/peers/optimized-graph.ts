/**
 * Writes the graph onnxruntime-node actually runs for a model: `optimizedModelFilePath` after the session's graph
 * optimizations at the level the encoder uses ('all'), so its op types show which fusions fired.
 *   npx tsx bench/peers/optimized-graph.ts MODEL.onnx OUT.onnx
 * Count them with `bench/peers/bench_only_graph_variants.py --count OUT.onnx` in the peers' venv.
 */
import * as ort from 'onnxruntime-node';

const [input, output] = process.argv.slice(2);
if (!input || !output) throw new Error('usage: optimized-graph.ts MODEL.onnx OUT.onnx');
const session = await ort.InferenceSession.create(input, { graphOptimizationLevel: 'all', optimizedModelFilePath: output, intraOpNumThreads: 1 });
await session.release();
process.stdout.write(`wrote ${output}\n`);
