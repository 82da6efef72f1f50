/**
 * `scripts/emulator start|stop|status|env`: the local AWS emulator for integration tests, LocalStack on the host
 * without Docker, moto's server when LocalStack cannot start. The wrapper holds a lock around start and stop.
 */
import { HOST, PORT, log } from './config.js';
import { localstack, moto } from './install.js';
import { acquireLease, leaseHolders, releaseLease } from './lease.js';
import { clearState, killGroup, launch, portInUse, readState, smokeTest, type EmulatorState } from './process.js';

/** Starts LocalStack (or moto when LocalStack cannot start), or reuses the one already running. */
async function start(owner: EmulatorState['owner'], lease?: string): Promise<EmulatorState> {
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
  if (lease) acquireLease(lease, state.pid);
  return state;
}

/** Stops the emulator; with a lease, only drops the lease and stops a lease-started emulator nobody holds anymore. */
async function stop(lease?: string): Promise<void> {
  const state = readState();
  if (lease) {
    releaseLease(lease);
    const holders = leaseHolders();
    if (state && (state.owner !== 'lease' || holders.length > 0)) {
      log(`leaving ${state.emulator} running (${state.owner === 'lease' ? `still used by test run(s) ${holders.join(', ')}` : 'started by hand'})`);
      return;
    }
  }
  if (state) {
    await killGroup(state.pid);
    log(`stopped ${state.emulator} ${state.version} (pid ${state.pid})`);
  } else log('not running');
  clearState();
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

main(process.argv.slice(2)).catch((err: unknown) => {
  log(`error: ${(err as Error).message}`);
  process.exit(1);
});
