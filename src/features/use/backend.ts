/**
 * Chooses the TensorFlow.js backend for the sentence encoder. Measured here with USE-lite on SST-2 sentences:
 * wasm (SIMD, one thread in Node) ≈ 70 texts per CPU-second, the pure-JS cpu backend ≈ 2, so the order is
 * tensorflow (native libtensorflow, only where tfjs-node is installed: the trainer image) > wasm > cpu. The choice is process-wide: TF.js has one
 * active backend per thread.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { ConfigError } from '../../errors/index.js';

/** Backends the encoder can run on, fastest first. */
export const BACKEND_ORDER = ['tensorflow', 'wasm', 'cpu'] as const;

/** A TF.js backend name the encoder knows. */
export type UseBackend = (typeof BACKEND_ORDER)[number];

// tfjs-node cannot be installed on machines without a libtensorflow download; a variable specifier keeps
// TypeScript and bundlers from requiring it.
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

async function registerNative(): Promise<boolean> {
  if (tf.findBackendFactory('tensorflow')) return true;
  for (const name of NATIVE_PACKAGES) {
    try {
      await import(name);
      return tf.findBackendFactory('tensorflow') !== null;
    } catch {
      // Not installed here: try the next one.
    }
  }
  return false;
}

/** Activates `wanted` (or the fastest backend that initialises) and returns its name. */
export async function activateBackend(wanted?: UseBackend): Promise<UseBackend> {
  const candidates = wanted ? [wanted] : BACKEND_ORDER;
  const failures: string[] = [];
  for (const name of candidates) {
    if (name === 'tensorflow' && !(await registerNative())) {
      failures.push('tensorflow: @tensorflow/tfjs-node is not installed');
      continue;
    }
    if (tf.getBackend() === name) return name;
    let ok = false;
    try {
      ok = await tf.setBackend(name);
    } catch (err) {
      failures.push(`${name}: ${(err as Error).message}`);
      continue;
    }
    if (ok) {
      await tf.ready();
      return name;
    }
    failures.push(`${name}: failed to initialise`);
  }
  throw new ConfigError(`no usable TensorFlow.js backend (${failures.join('; ')})`);
}
