import type { MlpEngine, MlpSpec } from './engine.js';
import { WasmMlp } from './wasm-mlp.js';

/** Engines by name; the Batch trainer registers the TensorFlow.js engine when tfjs-node(-gpu) is importable. */
const engines = new Map<string, (spec: MlpSpec, seed: number) => MlpEngine>([['wasm-simd', (spec, seed) => new WasmMlp(spec, seed)]]);
let preferred = 'wasm-simd';

/** Makes `name` available and, when `prefer` is set, the engine new models use. */
export function registerEngine(name: string, make: (spec: MlpSpec, seed: number) => MlpEngine, prefer = false): void {
  engines.set(name, make);
  if (prefer) preferred = name;
}

/** A new model with freshly initialised weights (seeded) on the preferred engine. */
export function createEngine(spec: MlpSpec, seed: number): MlpEngine {
  return engines.get(preferred)!(spec, seed);
}
