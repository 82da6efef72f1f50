/** What TensorFlow.js runs on after the GPU binding was (or was not) loaded. */
export interface BackendInfo {
  backend: string;
  gpu: boolean;
  /** Why the GPU binding could not be loaded, if it could not. */
  loadError?: string;
}

// A variable specifier: the package exists only in the trainer image, never in the repository's node_modules.
const GPU_BINDING = '@tensorflow/tfjs-node-gpu';

/**
 * Loads tfjs-node-gpu when it is installed (the image), which registers the native "tensorflow" backend on the
 * shared tfjs-core, and reports the active backend and whether TensorFlow placed it on a CUDA device.
 */
export async function loadTensorflowBackend(): Promise<BackendInfo> {
  let loadError: string | undefined;
  try {
    await import(GPU_BINDING);
  } catch (err) {
    loadError = err instanceof Error ? err.message : String(err);
  }
  const tf = await import('@tensorflow/tfjs');
  await tf.ready();
  const backend = tf.getBackend();
  const gpu = backend === 'tensorflow' && (tf.backend() as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true;
  return { backend, gpu, loadError };
}

/** Throws a message naming the cause when a GPU was required but TensorFlow.js is not using one. */
export function assertGpu(info: BackendInfo): void {
  if (info.gpu) return;
  const why = info.loadError
    ? `${GPU_BINDING} could not be loaded: ${info.loadError}`
    : info.backend === 'tensorflow'
      ? 'libtensorflow found no CUDA device (check the instance type, the NVIDIA driver of the AMI and the job GPU requirement)'
      : `the active backend is "${info.backend}", not "tensorflow"`;
  throw new Error(`TEXTSHIFT_REQUIRE_GPU=1 but TensorFlow.js is not running on a GPU: ${why}`);
}
