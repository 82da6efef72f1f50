/**
 * Leases let several test runs share one emulator: each run holds a file named by its PID, and `stop --lease` ends a
 * lease-started emulator only when no live run holds one.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE } from './config.js';
import { isAlive } from './process.js';

const LEASES = join(CACHE, 'leases');

/** Records that process `holder` uses the emulator with PID `emulatorPid`. */
export function acquireLease(holder: string, emulatorPid: number): void {
  mkdirSync(LEASES, { recursive: true });
  writeFileSync(join(LEASES, holder), `${emulatorPid}\n`);
}

/** Drops the lease of process `holder`. */
export function releaseLease(holder: string): void {
  rmSync(join(LEASES, holder), { force: true });
}

/** PIDs still holding a lease; leases of processes that are gone (a killed test run) are dropped on the way. */
export function leaseHolders(): string[] {
  const holders: string[] = [];
  for (const holder of existsSync(LEASES) ? readdirSync(LEASES) : []) {
    if (/^\d+$/.test(holder) && isAlive(Number(holder))) holders.push(holder);
    else rmSync(join(LEASES, holder), { force: true });
  }
  return holders;
}
