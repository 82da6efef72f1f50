/** What every emulator module shares: where its files live, where it listens, how it reports progress. */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The repository's .cache/emulator/ (gitignored; this folder is two levels below the root): one venv per emulator,
 * a data folder wiped on each start, a log per emulator, the PID file, state.json, the leases and the lock.
 */
export const CACHE = fileURLToPath(new URL('../../.cache/emulator', import.meta.url));
export const HOST = '127.0.0.1';
export const PORT = Number(process.env.TEXTSHIFT_EMULATOR_PORT ?? 4566);
export const ENDPOINT = `http://${HOST}:${PORT}`;

/** Progress goes to stderr, so stdout carries only what callers parse (state JSON, env exports). */
export function log(message: string): void {
  process.stderr.write(`[emulator] ${message}\n`);
}

/** The last lines of a log file, so an error shows the cause without opening the log. */
export function tail(file: string, lines = 30): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}
