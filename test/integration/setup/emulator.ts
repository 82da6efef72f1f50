/**
 * Vitest globalSetup of the integration project: finds or starts the AWS emulator the tests run against.
 * With TEXTSHIFT_AWS_ENDPOINT set (CI starts the emulator itself) it uses that endpoint; otherwise it starts one via
 * `scripts/emulator start --lease <pid>` and stops it afterwards unless another run still uses it. When no emulator
 * can be reached the setup throws, so the integration tests fail instead of being skipped.
 */
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

const SCRIPT = join(resolve(dirname(fileURLToPath(import.meta.url)), '../../..'), 'scripts', 'emulator');

/** Runs scripts/emulator; its progress goes to our stderr, its stdout (the state JSON) is returned. */
function emulatorScript(args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(SCRIPT, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', fail);
    child.once('close', (code) => (code === 0 ? done(out) : fail(new Error(`scripts/emulator ${args.join(' ')} exited with ${code}`))));
  });
}

/** Names the emulator behind an endpoint someone else started, or throws when nothing answers there. */
async function identify(endpoint: string): Promise<string> {
  if (process.env.TEXTSHIFT_AWS_EMULATOR) return process.env.TEXTSHIFT_AWS_EMULATOR;
  let health: Response;
  try {
    health = await fetch(`${endpoint}/_localstack/health`, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new Error(`TEXTSHIFT_AWS_ENDPOINT=${endpoint} does not answer (${(err as Error).message}); start the emulator with scripts/emulator start or unset the variable`);
  }
  if (health.ok) {
    const body = (await health.json()) as { version?: string };
    return `localstack ${body.version ?? '(unknown version)'}`;
  }
  const moto = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
  return moto?.ok ? 'moto (version unknown)' : 'an unidentified S3-compatible endpoint';
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // TEXTSHIFT_IT_AWS=1: a real account through the default credential chain (README, "Integration tests: three targets"); no emulator.
  if (process.env.TEXTSHIFT_IT_AWS === '1') {
    const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
    console.log(`[integration] target: real AWS (${region}, default credentials); tests that need an emulator are skipped`);
    project.provide('awsEndpoint', '');
    project.provide('awsEmulator', `real AWS ${region}`);
    return async () => {};
  }
  const preset = process.env.TEXTSHIFT_AWS_ENDPOINT;
  let endpoint: string;
  let emulator: string;
  let release: (() => Promise<unknown>) | undefined;
  if (preset) {
    endpoint = preset;
    emulator = await identify(preset);
  } else {
    const lease = String(process.pid);
    let out: string;
    try {
      out = await emulatorScript(['start', '--lease', lease]);
    } catch (err) {
      throw new Error(`integration tests need the AWS emulator, and scripts/emulator could not start one: ${(err as Error).message} (details above)`);
    }
    const state = JSON.parse(out.trim().split('\n').at(-1) ?? '') as { emulator: string; version: string; endpoint: string };
    endpoint = state.endpoint;
    emulator = `${state.emulator} ${state.version}`;
    release = () => emulatorScript(['stop', '--lease', lease]);
    // Tests that build clients from the environment (storeFromUrl) find the emulator too; test workers inherit it.
    process.env.TEXTSHIFT_AWS_ENDPOINT = endpoint;
    process.env.TEXTSHIFT_AWS_EMULATOR = emulator;
  }
  console.log(`[integration] AWS emulator: ${emulator} at ${endpoint}`);
  project.provide('awsEndpoint', endpoint);
  project.provide('awsEmulator', emulator);
  return async () => {
    if (!release) return;
    await release();
    delete process.env.TEXTSHIFT_AWS_ENDPOINT;
    delete process.env.TEXTSHIFT_AWS_EMULATOR;
  };
}
