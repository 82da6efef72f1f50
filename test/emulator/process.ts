/**
 * The emulator process: launched from its venv in its own process group, polled with real requests until it serves,
 * killed by group, and recorded in state.json (plus a plain PID file) while it runs.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { ListStateMachinesCommand, SFNClient } from '@aws-sdk/client-sfn';
import { CACHE, ENDPOINT, HOST, PORT, log, tail } from './config.js';
import { ensureVenv, type EmulatorSpec } from './install.js';

const STATE_FILE = join(CACHE, 'state.json');
const PID_FILE = join(CACHE, 'emulator.pid');
const TIMEOUT_MS = Number(process.env.TEXTSHIFT_EMULATOR_TIMEOUT ?? 120) * 1000;

/** What `start` writes to state.json and prints on stdout. */
export interface EmulatorState {
  emulator: EmulatorSpec['name'];
  version: string;
  endpoint: string;
  pid: number;
  /** `manual`: started from the command line, only `stop` ends it; `lease`: started for a test run, ends with the last lease. */
  owner: 'manual' | 'lease';
  startedAt: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a process with this PID exists (EPERM: it does, owned by someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether something already listens on the emulator's port. */
export function portInUse(): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: HOST, port: PORT });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

/** Real requests through the AWS SDK: LocalStack loads providers lazily, so a healthy /health is not enough. */
export async function smokeTest(endpoint = ENDPOINT): Promise<string | undefined> {
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

/** Resolves to undefined when the emulator serves requests, or to what is still missing. */
async function notReadyReason(spec: EmulatorSpec): Promise<string | undefined> {
  if (spec.healthServices) {
    const health = await fetchJson(`${ENDPOINT}/_localstack/health`);
    if (health === undefined) return 'no answer from /_localstack/health';
    const services = (health as { services?: Record<string, string> }).services ?? {};
    const missing = spec.healthServices.filter((s) => services[s] !== 'available' && services[s] !== 'running');
    if (missing.length > 0) return `services not available yet: ${missing.map((s) => `${s}=${services[s] ?? 'absent'}`).join(', ')}`;
    const version = (health as { version?: string }).version;
    if (version !== spec.version) return `expected LocalStack ${spec.version} on port ${PORT}, found version ${version}`;
  }
  return smokeTest();
}

/** The recorded emulator, if its process is still alive (and, where /proc tells, still the emulator: PIDs get reused). */
export function readState(): EmulatorState | undefined {
  if (!existsSync(STATE_FILE)) return undefined;
  const state = JSON.parse(readFileSync(STATE_FILE, 'utf8')) as EmulatorState;
  if (!isAlive(state.pid)) return undefined;
  const cmdline = `/proc/${state.pid}/cmdline`;
  if (existsSync(cmdline) && !readFileSync(cmdline, 'utf8').includes(state.emulator)) return undefined;
  return state;
}

/** Removes state.json and the PID file, so nothing points at an emulator that is gone. */
export function clearState(): void {
  rmSync(STATE_FILE, { force: true });
  rmSync(PID_FILE, { force: true });
}

/** Starts the emulator in its own process group and waits until it serves requests; throws with the log tail if not. */
export async function launch(spec: EmulatorSpec, owner: EmulatorState['owner']): Promise<EmulatorState> {
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
    reason = await notReadyReason(spec);
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

/** SIGTERM to the whole process group (the emulator's Python spawns helpers), SIGKILL after 15 s. */
export async function killGroup(pid: number): Promise<void> {
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
