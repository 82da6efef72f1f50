/**
 * What each emulator is (LocalStack 4.14.0 from PyPI, the last release that starts without an account token; moto's
 * server as the fallback) and its install: one venv per emulator, reused while requirement, constraints and Python match.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CACHE, HOST, PORT, log, tail } from './config.js';

/** Only what the tests use; LocalStack on the host cannot run Lambda (needs Docker) or Batch (paid edition). */
const SERVICES = ['s3', 'events', 'stepfunctions', 'iam', 'sts', 'sqs', 'logs'];

/** One emulator: what to install with which Python, and how to run it. */
export interface EmulatorSpec {
  name: 'localstack' | 'moto';
  version: string;
  venv: string;
  /** The pip requirement and, when the release pins its dependencies, the constraints file. */
  requirement: string;
  constraints?: string;
  /** Oldest Python that runs it. */
  minPython: [number, number];
  args: string[];
  env: Record<string, string>;
  /** LocalStack only: services its /_localstack/health must report up before the smoke test is worth trying. */
  healthServices?: string[];
}

/** LocalStack on the host, no Docker: the default emulator. */
export const localstack: EmulatorSpec = {
  name: 'localstack',
  version: '4.14.0',
  venv: join(CACHE, 'venv'),
  requirement: 'localstack-core[runtime]==4.14.0',
  constraints: fileURLToPath(new URL('localstack-constraints.txt', import.meta.url)),
  // 4.14.0 declares Python >= 3.10 but its code uses 3.12 syntax (PEP 695 generics); it is built for 3.13.
  minPython: [3, 12],
  args: ['-m', 'localstack.runtime.main'],
  env: {
    SERVICES: SERVICES.join(','),
    GATEWAY_LISTEN: `${HOST}:${PORT}`,
    // Returned URLs (SQS queue URLs, S3 locations) must name an address that resolves without internet.
    LOCALSTACK_HOST: `${HOST}:${PORT}`,
    SQS_ENDPOINT_STRATEGY: 'path',
    // Closed network: no DNS server of its own, no certificate download, no analytics calls.
    DNS_ADDRESS: '0',
    SKIP_SSL_CERT_DOWNLOAD: '1',
    DISABLE_EVENTS: '1',
    FILESYSTEM_ROOT: join(CACHE, 'data', 'localstack'),
    LOCALSTACK_VOLUME_DIR: join(CACHE, 'data', 'localstack', 'volume'),
  },
  healthServices: SERVICES,
};

/** moto's server: the fallback when LocalStack cannot start. */
export const moto: EmulatorSpec = {
  name: 'moto',
  version: '5.2.5',
  venv: join(CACHE, 'moto-venv'),
  requirement: 'moto[server]==5.2.5',
  minPython: [3, 9],
  args: ['-m', 'moto.server', '-H', HOST, '-p', String(PORT)],
  env: {},
};

function pythonVersion(python: string): [number, number, number] | undefined {
  const r = spawnSync(python, ['-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const parts = r.stdout.trim().split('.').map(Number);
  return parts.length === 3 ? (parts as [number, number, number]) : undefined;
}

/** First Python that is new enough: $TEXTSHIFT_EMULATOR_PYTHON, python3.13, python3.12, pyenv's 3.13/3.12, python3. */
function findPython(min: [number, number]): { python: string; version: string } {
  const candidates = process.env.TEXTSHIFT_EMULATOR_PYTHON
    ? [process.env.TEXTSHIFT_EMULATOR_PYTHON]
    : ['python3.13', 'python3.12', ...pyenvPythons(), 'python3'];
  const tried: string[] = [];
  for (const python of candidates) {
    const v = pythonVersion(python);
    tried.push(`${python} (${v ? v.join('.') : 'not runnable'})`);
    if (v && (v[0] > min[0] || (v[0] === min[0] && v[1] >= min[1]))) return { python, version: v.join('.') };
  }
  throw new Error(`needs Python >= ${min.join('.')}; tried ${tried.join(', ')}. Set TEXTSHIFT_EMULATOR_PYTHON to one.`);
}

function pyenvPythons(): string[] {
  const r = spawnSync('pyenv', ['root'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  const versions = join(r.stdout.trim(), 'versions');
  if (!existsSync(versions)) return [];
  return readdirSync(versions)
    .filter((v) => /^3\.1[23]\.\d+$/.test(v))
    .sort()
    .reverse()
    .map((v) => join(versions, v, 'bin', 'python3'));
}

/** Creates or reuses the emulator's venv and returns its Python; a marker file records what was installed with which Python. */
export function ensureVenv(spec: EmulatorSpec): string {
  const venvPython = join(spec.venv, 'bin', 'python');
  const markerFile = join(spec.venv, 'textshift-install.json');
  const existing = existsSync(venvPython) ? pythonVersion(venvPython) : undefined;
  const wanted = (pythonVersionText: string) =>
    JSON.stringify({
      requirement: spec.requirement,
      constraintsSha256: spec.constraints ? createHash('sha256').update(readFileSync(spec.constraints)).digest('hex') : null,
      python: pythonVersionText,
    });
  if (existing && existsSync(markerFile) && readFileSync(markerFile, 'utf8') === wanted(existing.join('.'))) return venvPython;

  const { python, version } = findPython(spec.minPython);
  log(`installing ${spec.requirement} with Python ${version} into ${spec.venv} (first run only; 1-4 minutes)`);
  const started = Date.now();
  rmSync(spec.venv, { recursive: true, force: true });
  const installLog = join(CACHE, `${spec.name}-install.log`);
  const out = openSync(installLog, 'w');
  try {
    run(python, ['-m', 'venv', spec.venv], out, installLog);
    const constraints = spec.constraints ? ['-c', spec.constraints] : [];
    run(venvPython, ['-m', 'pip', 'install', '--disable-pip-version-check', ...constraints, spec.requirement], out, installLog);
  } finally {
    closeSync(out);
  }
  writeFileSync(markerFile, wanted(version));
  log(`installed ${spec.name} ${spec.version} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return venvPython;
}

function run(cmd: string, args: string[], out: number, logFile: string): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', out, out] });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal}); ${logFile} ends with:\n${tail(logFile)}`);
  }
}
