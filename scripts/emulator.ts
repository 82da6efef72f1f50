/**
 * The local AWS emulator for integration tests: LocalStack 4.14.0 from PyPI (the last release that starts without
 * an account token) run on the host without Docker, with moto's server as the fallback. Run through
 * `scripts/emulator start|stop|status|env`, which serialises start/stop with a lock file.
 *
 * Everything lives in .cache/emulator/ (gitignored): one venv per emulator, reused while its pinned requirement,
 * constraints and Python match; a data folder wiped on each start; a log per emulator; the PID file; state.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { ListStateMachinesCommand, SFNClient } from '@aws-sdk/client-sfn';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = join(ROOT, '.cache', 'emulator');
const STATE_FILE = join(CACHE, 'state.json');
const PID_FILE = join(CACHE, 'emulator.pid');
const LEASES = join(CACHE, 'leases');
const HOST = '127.0.0.1';
const PORT = Number(process.env.TEXTSHIFT_EMULATOR_PORT ?? 4566);
const ENDPOINT = `http://${HOST}:${PORT}`;
const TIMEOUT_MS = Number(process.env.TEXTSHIFT_EMULATOR_TIMEOUT ?? 120) * 1000;
/** Only what the tests use; LocalStack on the host cannot run Lambda (needs Docker) or Batch (paid edition). */
const SERVICES = ['s3', 'events', 'stepfunctions', 'iam', 'sts', 'sqs', 'logs'];

/** What `start` writes to state.json and prints on stdout. */
export interface EmulatorState {
  emulator: 'localstack' | 'moto';
  version: string;
  endpoint: string;
  pid: number;
  /** `manual`: started from the command line, only `stop` ends it; `lease`: started for a test run, ends with the last lease. */
  owner: 'manual' | 'lease';
  startedAt: string;
}

interface EmulatorSpec {
  name: EmulatorState['emulator'];
  version: string;
  venv: string;
  /** The pip requirement and, when the release pins its dependencies, the constraints file. */
  requirement: string;
  constraints?: string;
  /** Oldest Python that runs it. */
  minPython: [number, number];
  args: string[];
  env: Record<string, string>;
  /** Resolves to undefined when the emulator serves requests, or to what is still missing. */
  notReadyReason(): Promise<string | undefined>;
}

const localstack: EmulatorSpec = {
  name: 'localstack',
  version: '4.14.0',
  venv: join(CACHE, 'venv'),
  requirement: 'localstack-core[runtime]==4.14.0',
  constraints: join(ROOT, 'scripts', 'localstack-constraints.txt'),
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
  async notReadyReason() {
    const health = await fetchJson(`${ENDPOINT}/_localstack/health`);
    if (health === undefined) return 'no answer from /_localstack/health';
    const services = (health as { services?: Record<string, string> }).services ?? {};
    const missing = SERVICES.filter((s) => services[s] !== 'available' && services[s] !== 'running');
    if (missing.length > 0) return `services not available yet: ${missing.map((s) => `${s}=${services[s] ?? 'absent'}`).join(', ')}`;
    const version = (health as { version?: string }).version;
    if (version !== this.version) return `expected LocalStack ${this.version} on port ${PORT}, found version ${version}`;
    return smokeTest();
  },
};

const moto: EmulatorSpec = {
  name: 'moto',
  version: '5.2.5',
  venv: join(CACHE, 'moto-venv'),
  requirement: 'moto[server]==5.2.5',
  minPython: [3, 9],
  args: ['-m', 'moto.server', '-H', HOST, '-p', String(PORT)],
  env: {},
  async notReadyReason() {
    return smokeTest();
  },
};

/** Real requests through the AWS SDK: LocalStack loads providers lazily, so a healthy /health is not enough. */
async function smokeTest(endpoint = ENDPOINT): Promise<string | undefined> {
  const common = { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 };
  const s3 = new S3Client({ ...common, forcePathStyle: true });
  const sfn = new SFNClient(common);
  try {
    await s3.send(new ListBucketsCommand({}));
    await sfn.send(new ListStateMachinesCommand({}));
    return undefined;
  } catch (err) {
    return `S3/Step Functions request failed: ${(err as Error).message}`;
  } finally {
    s3.destroy();
    sfn.destroy();
  }
}

async function fetchJson(url: string): Promise<unknown> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return res.ok ? await res.json() : undefined;
  } catch {
    return undefined;
  }
}

function log(message: string): void {
  process.stderr.write(`[emulator] ${message}\n`);
}

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

/** Creates or reuses the emulator's venv; a marker file records what was installed with which Python. */
function ensureVenv(spec: EmulatorSpec): string {
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

function tail(file: string, lines = 30): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function portInUse(): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: HOST, port: PORT });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The recorded emulator, if its process is still alive (and, where /proc tells, still the emulator: PIDs get reused). */
export function readState(): EmulatorState | undefined {
  if (!existsSync(STATE_FILE)) return undefined;
  const state = JSON.parse(readFileSync(STATE_FILE, 'utf8')) as EmulatorState;
  if (!isAlive(state.pid)) return undefined;
  const cmdline = `/proc/${state.pid}/cmdline`;
  if (existsSync(cmdline) && !readFileSync(cmdline, 'utf8').includes(state.emulator)) return undefined;
  return state;
}

/** Starts the emulator in its own process group and waits until it serves requests; throws with the log tail if not. */
async function launch(spec: EmulatorSpec, owner: EmulatorState['owner']): Promise<EmulatorState> {
  const python = ensureVenv(spec);
  const dataDir = join(CACHE, 'data', spec.name);
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const logFile = join(CACHE, `${spec.name}.log`);
  const out = openSync(logFile, 'w');
  const started = Date.now();
  const child = spawn(python, spec.args, {
    cwd: dataDir,
    env: { ...process.env, ...spec.env, PYTHONUNBUFFERED: '1' },
    stdio: ['ignore', out, out],
    detached: true,
  });
  closeSync(out);
  let exit: string | undefined;
  child.once('exit', (code, signal) => (exit = `exited with ${code ?? signal}`));
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn ${python} ${spec.args.join(' ')}`);

  let reason: string | undefined = 'not checked yet';
  while (Date.now() - started < TIMEOUT_MS) {
    await sleep(250);
    if (exit) break;
    reason = await spec.notReadyReason();
    if (reason === undefined) {
      const state: EmulatorState = { emulator: spec.name, version: spec.version, endpoint: ENDPOINT, pid, owner, startedAt: new Date().toISOString() };
      writeFileSync(PID_FILE, `${pid}\n`);
      writeFileSync(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`);
      log(`${spec.name} ${spec.version} ready at ${ENDPOINT} after ${((Date.now() - started) / 1000).toFixed(1)} s (pid ${pid}, log ${logFile})`);
      return state;
    }
  }
  // Worded before the kill below, whose exit and shutdown output would otherwise read as the cause.
  const why = exit ?? `not ready after ${TIMEOUT_MS / 1000} s (${reason}; raise TEXTSHIFT_EMULATOR_TIMEOUT to wait longer)`;
  const failure = new Error(`${spec.name} ${spec.version} ${why}; ${logFile} ends with:\n${tail(logFile)}`);
  await killGroup(pid);
  throw failure;
}

/** SIGTERM to the whole process group, SIGKILL after 15 s. */
async function killGroup(pid: number): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      // The group is already gone.
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + 15_000;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) signal('SIGKILL');
  while (isAlive(pid)) await sleep(100);
}

/** Starts LocalStack (or moto when LocalStack cannot start), or reuses the one already running. */
export async function start(owner: EmulatorState['owner'], lease?: string): Promise<EmulatorState> {
  mkdirSync(LEASES, { recursive: true });
  let state = readState();
  if (state) {
    const reason = await smokeTest(state.endpoint);
    if (reason) throw new Error(`${state.emulator} (pid ${state.pid}) is running but does not answer: ${reason}; run scripts/emulator stop`);
    log(`${state.emulator} ${state.version} already running at ${state.endpoint} (pid ${state.pid})`);
  } else {
    if (await portInUse()) throw new Error(`port ${PORT} on ${HOST} is taken by a process this script did not start; stop it or set TEXTSHIFT_EMULATOR_PORT`);
    const forced = process.env.TEXTSHIFT_EMULATOR;
    if (forced !== undefined && forced !== 'localstack' && forced !== 'moto') {
      throw new Error(`TEXTSHIFT_EMULATOR="${forced}": expected "localstack" or "moto"`);
    }
    if (forced === 'moto') state = await launch(moto, owner);
    else {
      try {
        state = await launch(localstack, owner);
      } catch (err) {
        if (forced === 'localstack') throw err;
        log(`LocalStack could not start, falling back to moto. Why:\n${(err as Error).message}`);
        state = await launch(moto, owner);
      }
    }
  }
  if (lease) writeFileSync(join(LEASES, lease), `${state.pid}\n`);
  return state;
}

/** Stops the emulator; with a lease, only drops the lease and stops a lease-started emulator nobody holds anymore. */
export async function stop(lease?: string): Promise<void> {
  const state = readState();
  if (lease) {
    rmSync(join(LEASES, lease), { force: true });
    const holders: string[] = [];
    for (const holder of existsSync(LEASES) ? readdirSync(LEASES) : []) {
      if (/^\d+$/.test(holder) && isAlive(Number(holder))) holders.push(holder);
      else rmSync(join(LEASES, holder), { force: true });
    }
    if (state && (state.owner !== 'lease' || holders.length > 0)) {
      log(`leaving ${state.emulator} running (${state.owner === 'lease' ? `still used by test run(s) ${holders.join(', ')}` : 'started by hand'})`);
      return;
    }
  }
  if (state) {
    await killGroup(state.pid);
    log(`stopped ${state.emulator} ${state.version} (pid ${state.pid})`);
  } else log('not running');
  rmSync(STATE_FILE, { force: true });
  rmSync(PID_FILE, { force: true });
}

function status(json: boolean): void {
  const state = readState();
  if (json) process.stdout.write(`${JSON.stringify(state ?? null)}\n`);
  else if (state) process.stdout.write(`running: ${state.emulator} ${state.version} at ${state.endpoint} (pid ${state.pid}, started ${state.startedAt})\n`);
  else process.stdout.write('not running\n');
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const leaseAt = rest.indexOf('--lease');
  const lease = leaseAt >= 0 ? rest[leaseAt + 1] : undefined;
  if (leaseAt >= 0 && !/^\d+$/.test(lease ?? '')) throw new Error('--lease expects the PID of the process holding the emulator');
  switch (command) {
    case 'start':
      process.stdout.write(`${JSON.stringify(await start(lease ? 'lease' : 'manual', lease))}\n`);
      return;
    case 'stop':
      return stop(lease);
    case 'status':
      return status(rest.includes('--json'));
    case 'env': {
      const state = readState();
      if (!state) throw new Error('not running; run scripts/emulator start first');
      process.stdout.write(`export TEXTSHIFT_AWS_ENDPOINT=${state.endpoint}\nexport TEXTSHIFT_AWS_EMULATOR='${state.emulator} ${state.version}'\n`);
      return;
    }
    default:
      throw new Error(
        'usage: scripts/emulator start [--lease PID] | stop [--lease PID] | status [--json] | env\n' +
          '  env: TEXTSHIFT_EMULATOR=localstack|moto (no fallback), TEXTSHIFT_EMULATOR_PORT (4566), ' +
          'TEXTSHIFT_EMULATOR_TIMEOUT (s, 120), TEXTSHIFT_EMULATOR_PYTHON',
      );
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    log(`error: ${(err as Error).message}`);
    process.exit(1);
  });
}
