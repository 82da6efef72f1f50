import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { InvalidInputError } from '../../src/errors/index.js';
import { NotFoundError, PreconditionFailedError, VersionNotFoundError, type BlobStore } from '../../src/store/blob-store.js';

/** How the shared BlobStore checks reach one implementation. */
export interface BlobStoreTarget {
  /** A fresh, empty store for one test, and how to remove it afterwards. */
  create(): Promise<{ store: BlobStore; cleanup(): Promise<void> }>;
  /** Keys per listing page the store was created with, so the list check spans several pages; undefined = no paging. */
  listPageSize?: number;
  /** Size of the body streamed while a reader polls (for S3: more than one multipart part). */
  largeBodyBytes: number;
  /** Whether the store keeps object versions (a versioned S3 bucket) or only the current object (a folder). */
  versioned: boolean;
  /** When the object was last modified as the store's expiry sees it (S3's LastModified, a file's mtime), in ms. */
  modifiedAt(store: BlobStore, key: string): Promise<number>;
}

const CHUNK = 256 * 1024;

/** Deterministic bytes (no RNG state shared between tests). */
function bytes(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, Math.min(i, size - 4));
  }
  return out;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Every head and list entry carries a non-empty ETag (S3's as S3 sends it, quoted, which is what If-Match takes). */
const ETAG = expect.stringMatching(/^.+$/);

/** A stream of body in CHUNK pieces with a pause between them, failing with failWith after failAfter bytes. */
function slowStream(body: Buffer, options: { pauseMs?: number; failAfter?: number; failWith?: Error } = {}): Readable {
  async function* chunks() {
    for (let at = 0; at < body.length; at += CHUNK) {
      if (options.failAfter !== undefined && at >= options.failAfter) throw options.failWith ?? new Error('body failed');
      yield body.subarray(at, Math.min(at + CHUNK, body.length));
      await new Promise((r) => setTimeout(r, options.pauseMs ?? 0));
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(Buffer.from(part as Uint8Array));
  return Buffer.concat(parts);
}

/** The behaviour every BlobStore promises (see src/store/blob-store.ts), written once for all implementations. */
export function describeBlobStoreContract(name: string, target: BlobStoreTarget): void {
  async function open(): Promise<BlobStore> {
    const { store, cleanup } = await target.create();
    onTestFinished(cleanup);
    return store;
  }

  describe(`${name}: BlobStore contract`, () => {
    it('returns exactly the bytes put, as Buffer, string or Uint8Array, by get, getOrThrow and getStream', async () => {
      const store = await open();
      const binary = bytes(70_001, 1);
      await store.put('runs/r1/model.bin', binary);
      await store.put('runs/r1/note.txt', 'héllo wörld\n');
      await store.put('runs/r1/array.bin', new Uint8Array([0, 1, 2, 255]));

      // Hashes, not toEqual: a deep comparison of 70 000 bytes costs seconds and prints unreadable diffs.
      const hashOf = async (body: Promise<Buffer | undefined>) => {
        const b = await body;
        return b === undefined ? 'absent' : sha256(b);
      };
      expect(await hashOf(store.get('runs/r1/model.bin'))).toBe(sha256(binary));
      expect(await hashOf(store.getOrThrow('runs/r1/model.bin'))).toBe(sha256(binary));
      expect(await hashOf(store.getStream('runs/r1/model.bin').then(readAll))).toBe(sha256(binary));
      expect((await store.get('runs/r1/note.txt'))?.toString('utf8')).toBe('héllo wörld\n');
      expect(await store.get('runs/r1/array.bin')).toEqual(Buffer.from([0, 1, 2, 255]));
      expect(await store.head('runs/r1/model.bin')).toMatchObject({ key: 'runs/r1/model.bin', size: 70_001 });
      expect(await store.head('runs/r1/note.txt')).toMatchObject({ key: 'runs/r1/note.txt', size: Buffer.byteLength('héllo wörld\n') });
    });

    it('stores an empty body as a zero-byte object', async () => {
      const store = await open();
      await store.put('empty.txt', '');
      expect(await store.get('empty.txt')).toEqual(Buffer.alloc(0));
      expect(await store.head('empty.txt')).toMatchObject({ key: 'empty.txt', size: 0 });
    });

    it('overwriting replaces the whole object', async () => {
      const store = await open();
      await store.put('a.json', '{"long":"first version of the object"}');
      await store.put('a.json', '{}');
      expect((await store.get('a.json'))?.toString()).toBe('{}');
      expect(await store.head('a.json')).toMatchObject({ key: 'a.json', size: 2 });
    });

    it('the ETag is the same in head and list, survives reads, and changes when a put replaces the body with one of equal size', async () => {
      const store = await open();
      await store.put('models/m/onnx/model.onnx', bytes(4096, 5));
      const first = await store.head('models/m/onnx/model.onnx');
      await store.get('models/m/onnx/model.onnx');
      expect((await store.head('models/m/onnx/model.onnx'))?.etag).toBe(first?.etag);
      expect((await store.list('models/m/')).map((o) => o.etag)).toEqual([first?.etag]);

      await store.put('models/m/onnx/model.onnx', bytes(4096, 6));
      const second = await store.head('models/m/onnx/model.onnx');
      expect(second?.size).toBe(first?.size);
      expect(second?.etag).not.toBe(first?.etag);
      expect((await store.list('models/m/')).map((o) => o.etag)).toEqual([second?.etag]);
    });

    it('a missing key reads as undefined from get/head and throws NotFoundError naming the key from getOrThrow/getStream', async () => {
      const store = await open();
      expect(await store.get('runs/none/manifest.json')).toBeUndefined();
      expect(await store.head('runs/none/manifest.json')).toBeUndefined();
      expect(await store.getWithInfo('runs/none/manifest.json')).toBeUndefined();
      for (const read of [() => store.getOrThrow('runs/none/manifest.json'), () => store.getStream('runs/none/manifest.json')]) {
        const err = await read().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(NotFoundError);
        expect((err as NotFoundError).key).toBe('runs/none/manifest.json');
        expect((err as Error).message).toContain('"runs/none/manifest.json"');
        expect((err as Error).message).toContain(store.url);
      }
    });

    it('list returns every key under a prefix, sorted with sizes, across several listing pages', async () => {
      const store = await open();
      // Three full pages and one key more, so the listing needs four pages when the store pages.
      const count = (target.listPageSize ?? 4) * 3 + 1;
      const expected = Array.from({ length: count }, (_, i) => ({ key: `runs/r1/shards/s${String(i).padStart(4, '0')}.npy`, size: i + 1, etag: ETAG }));
      // Written in reverse so sorted output is not an accident of write order.
      for (const { key, size } of [...expected].reverse()) await store.put(key, Buffer.alloc(size, 7));
      await store.put('runs/r10/manifest.json', '{}');
      await store.put('experiments/x.json', '{}');

      expect(await store.list('runs/r1/')).toEqual(expected);
      // A prefix is a string prefix, not a folder: runs/r1 also matches runs/r10.
      expect((await store.list('runs/r1')).map((b) => b.key)).toEqual([...expected.map((b) => b.key), 'runs/r10/manifest.json']);
      expect((await store.list('')).length).toBe(count + 2);
      expect(await store.list('runs/r2/')).toEqual([]);
    });

    it('delete removes the object, and deleting a missing key is not an error', async () => {
      const store = await open();
      await store.put('cache/features/a.npy', 'x');
      await store.put('cache/features/b.npy', 'y');
      await store.delete('cache/features/a.npy');
      await store.delete('cache/features/never-written.npy');
      expect(await store.get('cache/features/a.npy')).toBeUndefined();
      expect((await store.list('cache/')).map((b) => b.key)).toEqual(['cache/features/b.npy']);
    });

    it('touch marks an object used now, keeping its bytes, and reports a missing one without creating it', async () => {
      const store = await open();
      const key = 'cache/features/used.npy';
      const body = bytes(3000, 11);
      await store.put(key, body);
      const before = await target.modifiedAt(store, key);
      // S3 keeps whole seconds: wait past one so the new time is later however the put's time was rounded.
      await new Promise((r) => setTimeout(r, 1100));
      expect(await store.touch(key)).toBe(true);
      expect(await target.modifiedAt(store, key)).toBeGreaterThan(before);
      expect(await store.get(key)).toEqual(body);
      expect((await store.list('cache/')).map((b) => b.key)).toEqual([key]);
      expect(await store.touch('cache/features/missing.npy')).toBe(false);
      expect(await store.head('cache/features/missing.npy')).toBeUndefined();
    });

    it('putStream stores a body that arrives in many chunks', async () => {
      const store = await open();
      const body = bytes(3 * CHUNK + 123, 2);
      await store.putStream('runs/r1/checkpoints.zip', slowStream(body));
      expect(sha256(await store.getOrThrow('runs/r1/checkpoints.zip'))).toBe(sha256(body));
      expect(await store.head('runs/r1/checkpoints.zip')).toMatchObject({ key: 'runs/r1/checkpoints.zip', size: body.length });
    });

    it('a putStream whose body fails rejects with that error, writes nothing and keeps the previous version', async () => {
      const store = await open();
      const body = bytes(target.largeBodyBytes, 3);
      const failAfter = target.largeBodyBytes - CHUNK;
      await expect(
        store.putStream('fresh.zip', slowStream(body, { failAfter, failWith: new Error('network cable pulled') })),
      ).rejects.toThrow('network cable pulled');
      expect(await store.head('fresh.zip')).toBeUndefined();

      await store.put('kept.zip', 'previous version');
      await expect(store.putStream('kept.zip', slowStream(body, { failAfter }))).rejects.toThrow('body failed');
      expect((await store.get('kept.zip'))?.toString()).toBe('previous version');
      expect((await store.list('')).map((b) => b.key)).toEqual(['kept.zip']);
    });

    it('a reader polling during putStream sees the previous object or the complete new one, never a part', async () => {
      const store = await open();
      const previous = Buffer.from('previous version');
      const body = bytes(target.largeBodyBytes, 4);
      const expected = new Set([sha256(previous), sha256(body)]);
      await store.put('runs/r1/checkpoints.zip', previous);

      let writing = true;
      const seen: string[] = [];
      const write = store.putStream('runs/r1/checkpoints.zip', slowStream(body, { pauseMs: 5 })).finally(() => {
        writing = false;
      });
      while (writing) {
        const current = await store.get('runs/r1/checkpoints.zip');
        seen.push(current === undefined ? 'absent' : sha256(current));
      }
      await write;

      expect(seen.length).toBeGreaterThanOrEqual(3);
      expect(seen.filter((h) => !expected.has(h))).toEqual([]);
      expect(seen[0]).toBe(sha256(previous));
      expect(sha256(await store.getOrThrow('runs/r1/checkpoints.zip'))).toBe(sha256(body));
    });

    it('head and getWithInfo name the same etag for the same bytes, and every put changes it', async () => {
      const store = await open();
      await store.put('runs/r1/manifest.json', '{"n":1}');
      const first = await store.head('runs/r1/manifest.json');
      const read = await store.getWithInfo('runs/r1/manifest.json');
      expect(first?.etag).toEqual(expect.any(String));
      expect(read?.body.toString()).toBe('{"n":1}');
      expect(read?.info).toEqual(first);
      await store.put('runs/r1/manifest.json', '{"n":2}');
      const second = await store.head('runs/r1/manifest.json');
      expect(second?.etag).toEqual(expect.any(String));
      expect(second?.etag).not.toBe(first?.etag);
    });

    it('ifNoneMatch "*" creates an object that does not exist and refuses, writing nothing, when it does', async () => {
      const store = await open();
      await store.put('runs/r1/lock.json', 'first', { ifNoneMatch: '*' });
      const refused = await store.put('runs/r1/lock.json', 'second', { ifNoneMatch: '*' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(PreconditionFailedError);
      expect((refused as Error).message).toContain('"runs/r1/lock.json"');
      expect((await store.get('runs/r1/lock.json'))?.toString()).toBe('first');
      expect((await store.list('runs/r1/')).map((b) => b.key)).toEqual(['runs/r1/lock.json']);
    });

    it('ifMatch writes over the version it names and refuses a stale etag or a missing object, writing nothing', async () => {
      const store = await open();
      await store.put('m.json', 'v1');
      const v1 = (await store.head('m.json'))!.etag!;
      await store.put('m.json', 'v2', { ifMatch: v1 });
      expect((await store.get('m.json'))?.toString()).toBe('v2');
      await expect(store.put('m.json', 'v3', { ifMatch: v1 })).rejects.toBeInstanceOf(PreconditionFailedError);
      expect((await store.get('m.json'))?.toString()).toBe('v2');
      await expect(store.put('absent.json', 'x', { ifMatch: v1 })).rejects.toBeInstanceOf(PreconditionFailedError);
      expect(await store.head('absent.json')).toBeUndefined();
      expect((await store.list('')).map((b) => b.key)).toEqual(['m.json']);
    });

    it('concurrent read-modify-write loops with ifMatch lose no update', async () => {
      const store = await open();
      await store.put('counter.json', JSON.stringify({ seen: [] }));
      const writers = 6;
      const each = 3;
      // Each writer appends its own marks; a conflict means someone else wrote first: read again and re-apply.
      const writer = async (w: number) => {
        for (let i = 0; i < each; i++) {
          for (;;) {
            const { body, info } = (await store.getWithInfo('counter.json'))!;
            const doc = JSON.parse(body.toString()) as { seen: string[] };
            doc.seen.push(`${w}.${i}`);
            try {
              await store.put('counter.json', JSON.stringify(doc), { ifMatch: info.etag! });
              break;
            } catch (err) {
              if (!(err instanceof PreconditionFailedError)) throw err;
              await new Promise((r) => setTimeout(r, Math.random() * 20));
            }
          }
        }
      };
      await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
      const { seen } = JSON.parse((await store.getOrThrow('counter.json')).toString()) as { seen: string[] };
      expect(seen.sort()).toEqual(Array.from({ length: writers * each }, (_, k) => `${Math.floor(k / each)}.${k % each}`).sort());
      // No lock or temporary file of the store shows up as an object.
      expect((await store.list('')).map((b) => b.key)).toEqual(['counter.json']);
    });

    if (target.versioned) {
      it('keeps every version: head names the current one, and reads at an older version return its bytes', async () => {
        const store = await open();
        await store.put('datasets/d.csv', 'text,label\nold,0\n');
        const old = (await store.head('datasets/d.csv'))!;
        await store.put('datasets/d.csv', 'text,label\nnew,1\n');
        const now = (await store.head('datasets/d.csv'))!;
        expect(old.version).toEqual(expect.any(String));
        expect(now.version).toEqual(expect.any(String));
        expect(now.version).not.toBe(old.version);

        const at = { version: old.version! };
        expect((await store.get('datasets/d.csv', at))?.toString()).toBe('text,label\nold,0\n');
        expect((await store.getOrThrow('datasets/d.csv', at)).toString()).toBe('text,label\nold,0\n');
        expect((await readAll(await store.getStream('datasets/d.csv', at))).toString()).toBe('text,label\nold,0\n');
        expect((await store.getWithInfo('datasets/d.csv', at))?.info).toEqual(old);
        expect((await store.getWithInfo('datasets/d.csv'))?.info).toEqual(now);
      });

      it('a read at a version that does not exist throws VersionNotFoundError naming key and version', async () => {
        const store = await open();
        await store.put('datasets/d.csv', 'x');
        const real = (await store.head('datasets/d.csv'))!.version!;
        await store.delete('datasets/d.csv');
        // A deleted object's versions stay readable; a version never written is not.
        expect((await store.get('datasets/d.csv', { version: real }))?.toString()).toBe('x');
        for (const read of [() => store.get('datasets/d.csv', { version: 'no-such-version' }), () => store.getStream('datasets/d.csv', { version: 'no-such-version' })]) {
          const err = await read().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(VersionNotFoundError);
          expect((err as Error).message).toContain('"no-such-version" of "datasets/d.csv"');
        }
      });
    } else {
      it('keeps no versions: head names none, and a read at a version is refused naming the key', async () => {
        const store = await open();
        await store.put('datasets/d.csv', 'x');
        expect((await store.head('datasets/d.csv'))?.version).toBeUndefined();
        for (const read of [() => store.get('datasets/d.csv', { version: 'v1' }), () => store.getStream('datasets/d.csv', { version: 'v1' })]) {
          const err = await read().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(InvalidInputError);
          expect((err as Error).message).toContain('"datasets/d.csv"');
        }
      });
    }

    it('rejects keys that could escape the store or are malformed, naming the key', async () => {
      const store = await open();
      for (const key of ['../outside.json', '/abs.json', 'runs//x', 'runs/./x', 'a b.json', '']) {
        await expect(store.put(key, 'x')).rejects.toThrow(`invalid object key "${key}"`);
        await expect(store.get(key)).rejects.toThrow(`invalid object key "${key}"`);
      }
      expect(await store.list('')).toEqual([]);
    });
  });
}
