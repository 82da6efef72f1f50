import { ConfigError } from '../../../src/errors/index.js';

/** What the trainer runs on: whether the native TensorFlow binding loaded, its backend, and whether it uses a GPU. */
export interface BackendInfo {
  binding: boolean;
  backend?: string;
  gpu: boolean;
  /** Why the binding could not be loaded, if it could not. */
  loadError?: string;
}

// A variable specifier: the package exists only in the trainer image, never in the repository's node_modules.
const GPU_BINDING = '@tensorflow/tfjs-node-gpu';

/**
 * Loads tfjs-node-gpu when it is installed (the image): it registers the native "tensorflow" backend on the
 * project's tfjs-core. Without it (a local run) TensorFlow.js is left untouched and training stays on the
 * project's WebAssembly engine.
 */
export async function loadTensorflowBinding(): Promise<BackendInfo> {
  try {
    await import(GPU_BINDING);
  } catch (err) {
    return { binding: false, gpu: false, loadError: err instanceof Error ? err.message : String(err) };
  }
  const tf = await import('@tensorflow/tfjs');
  await tf.ready();
  const backend = tf.getBackend();
  const gpu = backend === 'tensorflow' && (tf.backend() as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true;
  return { binding: true, backend, gpu };
}

/** Throws a message naming the cause when a GPU was required but TensorFlow.js is not using one. */
export function assertGpu(info: BackendInfo): void {
  if (info.gpu) return;
  const why = !info.binding
    ? `${GPU_BINDING} could not be loaded: ${info.loadError}`
    : info.backend === 'tensorflow'
      ? 'libtensorflow found no CUDA device (check the instance type, the NVIDIA driver of the AMI and the job GPU requirement)'
      : `the active backend is "${info.backend}", not "tensorflow"`;
  throw new ConfigError(`TEXTSHIFT_REQUIRE_GPU=1 but TensorFlow.js is not running on a GPU: ${why}`);
}
