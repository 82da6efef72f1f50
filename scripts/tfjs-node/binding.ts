// Where scripts/tfjs-node/build.ts puts @tensorflow/tfjs-node, the CPU twin of the trainer image's tfjs-node-gpu
// (same binding source, same native "tensorflow" backend), and how tests and benchmarks load it.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The manifest and lock file the build installs from (package/), never installed at the repository root. */
export const TFJS_NODE_MANIFEST_DIR = fileURLToPath(new URL('./package', import.meta.url));

/** The tfjs-node release built: the same as the trainer image's tfjs-node-gpu and the project's TensorFlow.js. */
export const TFJS_NODE_VERSION = (
  JSON.parse(readFileSync(join(TFJS_NODE_MANIFEST_DIR, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
).dependencies['@tensorflow/tfjs-node']!;

/** The cache folder of the build (gitignored). */
export const TFJS_NODE_CACHE = fileURLToPath(new URL('../../.cache/tfjs-node/', import.meta.url));

/** The installed package folder; a path TEXTSHIFT_TF_BINDING can name. */
export const TFJS_NODE_PACKAGE = join(TFJS_NODE_CACHE, 'pkg', 'node_modules', '@tensorflow', 'tfjs-node');

/** Written last by the build: what was built, so a second run knows it is up to date. */
export const TFJS_NODE_STAMP = join(TFJS_NODE_CACHE, 'pkg', 'build.json');

/** The command that builds the binding, for messages. */
export const BUILD_COMMAND = 'npm run build:tfjs-node';

/** Thrown when the binding has not been built (or is broken): says which command builds it. */
export class TfjsNodeMissingError extends Error {
  override readonly name = 'TfjsNodeMissingError';
}

/**
 * Loads the built tfjs-node: it registers the native "tensorflow" backend on the project's TensorFlow.js (the build
 * leaves tfjs-node no TensorFlow.js of its own, so it resolves the project's). Throws TfjsNodeMissingError naming
 * the build command when the binding is not there or cannot be loaded.
 */
export function loadTfjsNode(): void {
  if (!existsSync(TFJS_NODE_STAMP)) {
    throw new TfjsNodeMissingError(`the TensorFlow native binding (@tensorflow/tfjs-node ${TFJS_NODE_VERSION}) is not built: run \`${BUILD_COMMAND}\` first`);
  }
  try {
    createRequire(import.meta.url)(TFJS_NODE_PACKAGE);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new TfjsNodeMissingError(`the TensorFlow native binding in ${TFJS_NODE_PACKAGE} does not load (${why}): run \`${BUILD_COMMAND} -- --force\``);
  }
}

/** What the build recorded (versions, wheel sha256), or undefined when nothing is built. */
export function readBuildStamp(): Record<string, unknown> | undefined {
  return existsSync(TFJS_NODE_STAMP) ? (JSON.parse(readFileSync(TFJS_NODE_STAMP, 'utf8')) as Record<string, unknown>) : undefined;
}
