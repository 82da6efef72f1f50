import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Versions recorded in run manifests: textshift, Node.js and the numeric libraries that shape results. */
export function packageVersions(): Record<string, string> {
  const out: Record<string, string> = { node: process.version };
  for (const name of ['textshift', '@tensorflow/tfjs', 'onnxruntime-node']) {
    try {
      const path = name === 'textshift' ? new URL('../../package.json', import.meta.url) : require.resolve(`${name}/package.json`);
      out[name] = (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
    } catch {
      // Not installed in this image (e.g. a Lambda bundle without tfjs): nothing to record.
    }
  }
  return out;
}
