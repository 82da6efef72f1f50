import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MissingInputError } from '../../../src/errors/index.js';
import type { PutStreamOptions } from '../../../src/store/blob-store.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { partSizeFor, S3_MULTIPART } from '../../../src/store/s3-limits.js';
import { writeCheckpointArchive } from '../../../src/workflow/checkpoint-archive.js';
import { entryBytes, listEntries, openZip } from '../../support/zip.js';

const RUN = 'r1';
const ZIP = `runs/${RUN}/checkpoints.zip`;
// Sizes past the store's 1 MiB read chunk, so entries span several chunks.
const checkpoints: Record<string, Buffer> = {
  'bow_1/best/model.safetensors': randomBytes(2_500_000),
  'bow_1/epoch_2/model.safetensors': randomBytes(1_200_000),
  'bow_1/epoch_2/optimizer.safetensors': randomBytes(2_400_000),
  'bow_1/epoch_2/state.json': Buffer.from(JSON.stringify({ epoch: 2, valAccuracy: 0.79, note: 'x'.repeat(5000) })),
  'bow_1/summary.json': Buffer.from('{"best":"epoch_2"}'),
  'bow_2/best/model.safetensors': Buffer.alloc(0),
};

/** A folder store whose streamed read of one key fails half-way. */
class FailingRead extends FsBlobStore {
  constructor(
    root: string,
    private readonly failing: string,
  ) {
    super(root);
  }

  override async getStream(key: string): Promise<Readable> {
    if (key !== this.failing) return super.getStream(key);
    return Readable.from(
      (async function* () {
        yield Buffer.alloc(1000);
        throw new Error('read of checkpoint failed');
      })(),
    );
  }
}

describe('writeCheckpointArchive', () => {
  let root: string;
  let store: FsBlobStore;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'textshift-archive-'));
    store = new FsBlobStore(root);
    for (const [name, body] of Object.entries(checkpoints)) await store.put(`runs/${RUN}/models/${name}`, body);
    await store.put(`runs/${RUN}/models/bow.result.json`, '{"family":"bow"}');
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('archives every checkpoint but the training result, paths relative to models/, weights stored and metadata deflated', async () => {
    expect(await writeCheckpointArchive(store, RUN)).toEqual({ key: ZIP, entries: Object.keys(checkpoints).length });
    const zip = await openZip(await store.getOrThrow(ZIP));
    try {
      const entries = await listEntries(zip);
      expect(entries.map((e) => e.fileName)).toEqual(Object.keys(checkpoints).sort());
      for (const e of entries) {
        const body = checkpoints[e.fileName]!;
        expect((await entryBytes(zip, e)).equals(body), e.fileName).toBe(true);
        expect(e.uncompressedSize, e.fileName).toBe(body.length);
        expect(e.crc32, e.fileName).toBe(crc32(body));
        expect(e.compressionMethod, e.fileName).toBe(e.fileName.endsWith('.safetensors') ? 0 : 8);
      }
    } finally {
      zip.close();
    }
  });

  it('writes the same bytes every time (entries dated at a fixed time, not when written)', async () => {
    await writeCheckpointArchive(store, RUN);
    const first = await store.getOrThrow(ZIP);
    await writeCheckpointArchive(store, RUN);
    expect((await store.getOrThrow(ZIP)).equals(first)).toBe(true);
  });

  it('a checkpoint read that fails mid-archive rejects and leaves the previous archive whole, with no partial file beside it', async () => {
    await writeCheckpointArchive(store, RUN);
    const previous = await store.getOrThrow(ZIP);
    const failing = new FailingRead(root, `runs/${RUN}/models/bow_1/epoch_2/optimizer.safetensors`);
    await expect(writeCheckpointArchive(failing, RUN)).rejects.toThrow('read of checkpoint failed');
    expect((await store.getOrThrow(ZIP)).equals(previous)).toBe(true);
    expect((await readdir(join(root, 'runs', RUN))).sort()).toEqual(['checkpoints.zip', 'models']);
  });

  it("declares the archive's size before streaming it, an upper bound close to the real size, so S3 can size its parts", async () => {
    // Incompressible metadata too: deflate makes random bytes a little larger, and the bound allows for it.
    await store.put(`runs/${RUN}/models/bow_1/events.out.tfevents`, randomBytes(300_000));
    const hints: (PutStreamOptions | undefined)[] = [];
    const recording = Object.assign(Object.create(store) as FsBlobStore, {
      putStream: (key: string, body: Readable, options?: PutStreamOptions) => {
        hints.push(options);
        return store.putStream(key, body, options);
      },
    });
    await writeCheckpointArchive(recording, RUN);
    const actual = (await store.head(ZIP))!.size;
    expect(hints).toHaveLength(1);
    const declared = hints[0]?.sizeHint ?? 0;
    expect(declared).toBeGreaterThanOrEqual(actual);
    // Headers at their ZIP64 sizes and deflate's worst case for the metadata: within 1.5% here.
    expect(declared).toBeLessThan(actual * 1.015);
    expect(Math.ceil(actual / partSizeFor(declared))).toBeLessThanOrEqual(S3_MULTIPART.maxParts);
  });

  it('refuses a run with no checkpoints', async () => {
    await expect(writeCheckpointArchive(store, 'r2')).rejects.toThrow(MissingInputError);
  });
});
