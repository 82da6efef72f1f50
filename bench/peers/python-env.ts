/**
 * The peers' Python environment: a venv under `.cache/peers/venv` with the exact pins of
 * `bench/peers/requirements.txt`, built on first use and reused while the pins and the interpreter are unchanged
 * (a stamp file in the venv holds their hash, written only after pip succeeded).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the pins and the venv live, relative to the repository root. */
export const REQUIREMENTS_FILE = 'bench/peers/requirements.txt';
export const VENV_DIR = '.cache/peers/venv';
const STAMP_FILE = 'textshift-requirements.sha256';

/** The stamp of a venv: sha256 of the requirements text and the interpreter version that built it. */
export function envStamp(requirements: string, pythonVersion: string): string {
  return createHash('sha256').update(requirements).update('\0').update(pythonVersion.trim()).digest('hex');
}

/** Returns the venv's python, building or rebuilding the venv first when its stamp does not match the pins. */
export function ensurePythonEnv(root: string, log: (line: string) => void): string {
  const basePython = process.env.PYTHON ?? 'python3';
  const version = execFileSync(basePython, ['-c', 'import sys; print(sys.version)'], { encoding: 'utf8' });
  const requirementsPath = join(root, REQUIREMENTS_FILE);
  const stamp = envStamp(readFileSync(requirementsPath, 'utf8'), version);
  const venv = join(root, VENV_DIR);
  const python = join(venv, 'bin', 'python');
  const stampPath = join(venv, STAMP_FILE);
  if (existsSync(python) && existsSync(stampPath) && readFileSync(stampPath, 'utf8').trim() === stamp) return python;
  log(`peers: building the Python environment in ${VENV_DIR} from ${REQUIREMENTS_FILE} (torch brings ~6 GB of CUDA libraries; minutes)`);
  rmSync(venv, { recursive: true, force: true });
  run(basePython, ['-m', 'venv', venv]);
  run(python, ['-m', 'pip', 'install', '--no-input', '--disable-pip-version-check', '-r', requirementsPath]);
  writeFileSync(stampPath, `${stamp}\n`);
  return python;
}

function run(command: string, args: string[]): void {
  // pip's progress goes to stderr with ours: stdout carries only the table.
  const r = spawnSync(command, args, { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
}
