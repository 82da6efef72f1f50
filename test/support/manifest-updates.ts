import { describe, expect, it, onTestFinished } from 'vitest';
import { asStage, createManifest, readManifest, updateManifest, type Manifest } from '../../src/run/manifest.js';
import { silentReporter } from '../../src/run/reporter.js';
import { runKeys } from '../../src/run/keys.js';
import type { BlobStore } from '../../src/store/blob-store.js';
import { markFailed } from '../../src/workflow/stages/mark-failed.js';

/** A fresh, empty store for one test, and how to remove it afterwards. */
export type StoreFactory = () => Promise<{ store: BlobStore; cleanup(): Promise<void> }>;

/** The smallest manifest the writers below need (what Prepare creates, without a config). */
function freshManifest(runId: string): Manifest {
  return { runId, status: 'running', stages: {}, inputs: {}, skippedRows: {}, splits: {} } as unknown as Manifest;
}

/**
 * `store`, whose first put of `key` with a body containing `marker` waits for `gate` before it is sent: the writer has
 * read the object and computed its change, and someone else writes in between — the interleaving that lost updates
 * before conditional writes.
 */
function heldBack(store: BlobStore, key: string, marker: string, gate: Promise<unknown>, onHeld: () => void): BlobStore {
  let held = false;
  return Object.assign(Object.create(store) as BlobStore, {
    put: async (k: string, body: string | Uint8Array, condition?: Parameters<BlobStore['put']>[2]) => {
      if (k === key && !held && Buffer.from(body).toString('utf8').includes(marker)) {
        held = true;
        onHeld();
        await gate;
      }
      return store.put(k, body, condition);
    },
  });
}

/** The manifest writers (updateManifest and the stages that use it) keep every concurrent change, on `name`'s store. */
export function describeManifestUpdates(name: string, create: StoreFactory): void {
  async function open(): Promise<BlobStore> {
    const { store, cleanup } = await create();
    onTestFinished(cleanup);
    return store;
  }

  describe(`${name}: concurrent manifest writers`, () => {
    it('createManifest creates once: a second create of the same run is refused and changes nothing', async () => {
      const store = await open();
      expect(await createManifest(store, { ...freshManifest('r1'), quick: true })).toBe(true);
      expect(await createManifest(store, { ...freshManifest('r1'), quick: false })).toBe(false);
      expect((await readManifest(store, 'r1')).quick).toBe(true);
    });

    it('10 parallel updates of different fields all survive', async () => {
      const store = await open();
      await createManifest(store, freshManifest('r1'));
      const at = '2026-01-01T00:00:00.000Z';
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          updateManifest(store, 'r1', (m) => {
            m.stages[`train:f${i}`] = { status: 'succeeded', startedAt: at };
          }),
        ),
      );
      const m = await readManifest(store, 'r1');
      expect(Object.keys(m.stages).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `train:f${i}`).sort());
      expect(m.status).toBe('running');
    });

    it('MarkFailed while a stage finishes: the failure and the stage\'s record both survive', async () => {
      const store = await open();
      await createManifest(store, freshManifest('r1'));
      // train:b has read the manifest (running, no failure) and is about to write "succeeded" when MarkFailed runs.
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let writing!: () => void;
      const stageWriting = new Promise<void>((r) => (writing = r));
      const held = heldBack(store, runKeys('r1').manifest, '"succeeded"', gate, writing);
      const stage = asStage(held, 'r1', 'train:b', () => Promise.resolve({ result: 'ok' }));
      await stageWriting;
      await markFailed({ store, data: store, reporter: silentReporter }, { runId: 'r1', stage: 'Train', error: { Error: 'States.TaskFailed', Cause: 'job a exited 1' } });
      release();
      expect(await stage).toBe('ok');

      const m = await readManifest(store, 'r1');
      expect(m.status).toBe('failed');
      expect(m.failure).toEqual({ stage: 'Train', error: 'States.TaskFailed: job a exited 1', errorName: 'States.TaskFailed', retryable: false });
      expect(m.stages.Train).toMatchObject({ status: 'failed', error: 'States.TaskFailed: job a exited 1' });
      expect(m.stages['train:b']).toMatchObject({ status: 'succeeded' });
    });

    it('an update of a run that does not exist fails naming the run, and writes nothing', async () => {
      const store = await open();
      await expect(updateManifest(store, 'nope', () => undefined)).rejects.toThrow('run "nope" not found');
      expect(await store.list('')).toEqual([]);
    });
  });
}
