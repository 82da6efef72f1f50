import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';
import yazl from 'yazl';
import { describe, expect, it } from 'vitest';
import { zipChunks, type ZipSource } from '../../../src/format/zip-writer.js';
import { entryBytes, listEntries, openZip } from '../../support/zip.js';

/** A source that yields `body` in chunks of `chunk` bytes. */
function source(name: string, body: Buffer, deflate: boolean, chunk = 64 * 1024): ZipSource {
  return {
    name,
    size: body.length,
    deflate,
    open: async () => (async function* () {
      for (let at = 0; at < body.length; at += chunk) yield body.subarray(at, at + chunk);
    })(),
  };
}

async function zipOf(sources: ZipSource[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of zipChunks(sources)) chunks.push(c);
  return Buffer.concat(chunks);
}

const files = {
  'bow_1/epoch_2/model.safetensors': randomBytes(300_000),
  'bow_1/epoch_2/state.json': Buffer.from(JSON.stringify({ epoch: 2, history: Array.from({ length: 200 }, (_, i) => ({ i, loss: 1 / (i + 1) })) })),
  'bow_1/empty.json': Buffer.alloc(0),
  'bow_1/empty.safetensors': Buffer.alloc(0),
  'bow_2/ünïcode.json': Buffer.from('{"a":1}'),
};
const sources = () => Object.entries(files).map(([name, body]) => source(name, body, !name.endsWith('.safetensors')));

describe('zipChunks', () => {
  it('writes the bytes yazl wrote for the same files (stored and deflated, empty ones, UTF-8 names), with every date at the DOS epoch', async () => {
    const reference = new yazl.ZipFile();
    for (const [name, body] of Object.entries(files)) {
      reference.addReadStream(Readable.from([body]), name, { compress: !name.endsWith('.safetensors'), size: body.length, mtime: new Date(0) });
    }
    reference.end();
    const expected = await buffer(reference.outputStream);
    expect((await zipOf(sources())).equals(expected)).toBe(true);
  });

  it('reads back with an independent reader: names in order, sizes, methods, valid CRCs and identical bytes', async () => {
    const zip = await openZip(await zipOf(sources()));
    try {
      const entries = await listEntries(zip);
      expect(entries.map((e) => e.fileName)).toEqual(Object.keys(files));
      for (const e of entries) {
        const body = files[e.fileName as keyof typeof files];
        const bytes = await entryBytes(zip, e);
        expect(bytes.equals(body), e.fileName).toBe(true);
        expect(e.uncompressedSize).toBe(body.length);
        expect(e.crc32).toBe(crc32(body));
        expect(e.compressionMethod).toBe(e.fileName.endsWith('.safetensors') ? 0 : 8);
        expect(e.getLastModDate({ forceDosFormat: true, timezone: 'UTC' }).toISOString()).toBe('1980-01-01T00:00:00.000Z');
      }
      // Metadata deflates well; it is not stored by mistake.
      expect(entries.find((e) => e.fileName === 'bow_1/epoch_2/state.json')!.compressedSize).toBeLessThan(files['bow_1/epoch_2/state.json'].length / 2);
    } finally {
      zip.close();
    }
  });

  it('refuses a source that yields other than its declared size (an object that changed after it was listed)', async () => {
    const short = { ...source('a.safetensors', Buffer.alloc(10), false), size: 11 };
    await expect(zipOf([short])).rejects.toThrow('zip entry "a.safetensors": read 10 bytes, expected 11');
  });

  it('passes a read failure through, naming its cause, for stored and deflated entries alike', async () => {
    for (const deflate of [false, true]) {
      const failing: ZipSource = {
        name: 'a.json',
        size: 10,
        deflate,
        open: async () => (async function* () {
          yield Buffer.alloc(5);
          throw new Error('disk read failed');
        })(),
      };
      await expect(zipOf([failing])).rejects.toThrow('disk read failed');
    }
  });

  it('refuses names that would extract outside the target folder', async () => {
    for (const name of ['/etc/passwd', 'a/../../b', 'a\\b', '']) {
      await expect(zipOf([source(name, Buffer.alloc(1), false)])).rejects.toThrow('must be a relative');
    }
  });

  it('writes ZIP64 sizes, offsets and end records for an entry of 4 GiB and the entry after it', async () => {
    // 4 GiB of zeros as one shared 1 MiB buffer: the archive below keeps references to its chunks, not copies.
    const zero = Buffer.alloc(1 << 20);
    const big: ZipSource = {
      name: 'big.safetensors',
      size: 2 ** 32,
      deflate: false,
      open: async () => (async function* () {
        for (let i = 0; i < 4096; i++) yield zero;
      })(),
    };
    const after = Buffer.from('{"after":"4 GiB"}');
    const archive = new ChunkArchive();
    for await (const c of zipChunks([big, source('after.json', after, true)])) archive.add(c);

    const zip = await openZip({ reader: archive, size: archive.size });
    try {
      const [first, second] = await listEntries(zip);
      // CRC-32 of 2^32 zero bytes, computed once with Python's zlib and cross-checked with the crc-32 package.
      expect(first).toMatchObject({ fileName: 'big.safetensors', uncompressedSize: 2 ** 32, compressedSize: 2 ** 32, crc32: 0xd202ef8d, versionNeededToExtract: 45 });
      const secondOffset = 30 + 'big.safetensors'.length + 2 ** 32 + 24;
      expect(second).toMatchObject({ fileName: 'after.json', uncompressedSize: after.length, crc32: crc32(after), relativeOffsetOfLocalHeader: secondOffset, versionNeededToExtract: 45 });
      expect((await entryBytes(zip, second!)).equals(after)).toBe(true);
      // The big entry's data descriptor: signature, CRC, then 8-byte compressed and uncompressed sizes.
      const descriptor = await archive.slice(30 + 'big.safetensors'.length + 2 ** 32, 24);
      expect([descriptor.readUInt32LE(0), descriptor.readUInt32LE(4), descriptor.readBigUInt64LE(8), descriptor.readBigUInt64LE(16)]).toEqual([0x08074b50, 0xd202ef8d, 2n ** 32n, 2n ** 32n]);
    } finally {
      zip.close();
    }
  }, 120_000);
});

/** An archive held as the chunks the writer yielded (references, not copies), readable at any offset by yauzl. */
class ChunkArchive extends yauzl.RandomAccessReader {
  private readonly chunks: { start: number; bytes: Buffer }[] = [];
  size = 0;

  add(bytes: Buffer): void {
    this.chunks.push({ start: this.size, bytes });
    this.size += bytes.length;
  }

  override _readStreamForRange(start: number, end: number): Readable {
    return Readable.from(this.range(start, end));
  }

  async slice(start: number, length: number): Promise<Buffer> {
    return buffer(Readable.from(this.range(start, start + length)));
  }

  private *range(start: number, end: number): Generator<Buffer> {
    let i = this.chunks.findIndex((c) => c.start + c.bytes.length > start);
    for (; i >= 0 && i < this.chunks.length && this.chunks[i]!.start < end; i++) {
      const { start: at, bytes } = this.chunks[i]!;
      yield bytes.subarray(Math.max(0, start - at), Math.min(bytes.length, end - at));
    }
  }
}
