import { createRequire } from 'node:module';
import { isAbsolute, resolve } from 'node:path';
import { DEPLOYMENT_ENV } from '../../../src/config/deployment-env.js';
import { ConfigError } from '../../../src/errors/index.js';

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
 * Loads the native binding, `requested` (the deployment's tfBinding: a package name, or a package folder relative
 * to the working directory) or else the image's tfjs-node-gpu: it registers the native "tensorflow" backend on the
 * project's tfjs-core. When the default is not installed (a local run) TensorFlow.js is left untouched and training
 * stays on the project's WebAssembly engine. A requested binding must load: its failure throws, since falling back
 * would silently train on another engine than the one asked for.
 */
export async function loadTensorflowBinding(requested?: string): Promise<BackendInfo> {
  const module = requested ?? GPU_BINDING;
  try {
    // require, not import(): a package folder is a valid require() target but not an ESM specifier.
    createRequire(import.meta.url)(isAbsolute(module) || module.startsWith('.') ? resolve(module) : module);
  } catch (err) {
    const loadError = err instanceof Error ? err.message : String(err);
    if (requested !== undefined) throw new ConfigError(`${DEPLOYMENT_ENV.tfBinding}=${module} could not be loaded: ${loadError}`);
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
  throw new ConfigError(`TEXTSHIFT_REQUIRE_GPU=1 but TensorFlow.js is not running on a GPU: ${why}`);
}
