import { createRequire } from 'node:module';
import { isAbsolute, resolve } from 'node:path';

/** What the trainer runs on: whether the native TensorFlow binding loaded, its backend, and whether it uses a GPU. */
export interface BackendInfo {
  /** The binding module tried: a package name or a package folder. */
  module: string;
  binding: boolean;
  backend?: string;
  gpu: boolean;
  /** Why the binding could not be loaded, if it could not. */
  loadError?: string;
}

/** The binding the trainer image installs. The package exists only there, never in the repository's node_modules. */
const GPU_BINDING = '@tensorflow/tfjs-node-gpu';

/**
 * The binding to load: TEXTSHIFT_TF_BINDING when set (a package name, or the path of a package folder relative to
 * the working directory, e.g. the CPU twin @tensorflow/tfjs-node built by `npm run build:tfjs-node`), else the
 * image's tfjs-node-gpu.
 */
export function bindingModule(env: NodeJS.ProcessEnv = process.env): string {
  return env.TEXTSHIFT_TF_BINDING || GPU_BINDING;
}

/**
 * Loads the native binding when it is installed (the image): it registers the native "tensorflow" backend on the
 * project's tfjs-core. Without it (a local run) TensorFlow.js is left untouched and training stays on the
 * project's WebAssembly engine. A binding named by TEXTSHIFT_TF_BINDING must load: its failure throws, since
 * falling back would silently train on another engine than the one asked for.
 */
export async function loadTensorflowBinding(env: NodeJS.ProcessEnv = process.env): Promise<BackendInfo> {
  const module = bindingModule(env);
  try {
    // require, not import(): a package folder is a valid require() target but not an ESM specifier.
    createRequire(import.meta.url)(isAbsolute(module) || module.startsWith('.') ? resolve(module) : module);
  } catch (err) {
    const loadError = err instanceof Error ? err.message : String(err);
    if (env.TEXTSHIFT_TF_BINDING) throw new Error(`TEXTSHIFT_TF_BINDING=${module} could not be loaded: ${loadError}`);
    return { module, binding: false, gpu: false, loadError };
  }
  const tf = await import('@tensorflow/tfjs');
  await tf.ready();
  const backend = tf.getBackend();
  const gpu = backend === 'tensorflow' && (tf.backend() as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true;
  return { module, binding: true, backend, gpu };
}

/** Throws a message naming the cause when a GPU was required but TensorFlow.js is not using one. */
export function assertGpu(info: BackendInfo): void {
  if (info.gpu) return;
  const why = !info.binding
    ? `${info.module} could not be loaded: ${info.loadError}`
    : info.backend === 'tensorflow'
      ? 'libtensorflow found no CUDA device (check the instance type, the NVIDIA driver of the AMI and the job GPU requirement)'
      : `the active backend is "${info.backend}", not "tensorflow"`;
  throw new Error(`TEXTSHIFT_REQUIRE_GPU=1 but TensorFlow.js is not running on a GPU: ${why}`);
}
