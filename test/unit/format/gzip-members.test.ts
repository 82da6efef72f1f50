// Gzip members: the output is exactly one zlib gzip per block of input, in input order however the blocks finish
// compressing, readable as one stream by gunzip; an empty input is still a valid gzip file; errors reach the reader.
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { buffer } from 'node:stream/consumers';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createGzipMembers } from '../../../src/format/gzip-members.js';

/** `body` through a gzip-members stream in chunks of `chunk` bytes. */
async function compress(body: Buffer, chunk: number, blockBytes: number, inFlight: number): Promise<Buffer> {
  const chunks = Array.from({ length: Math.ceil(body.length / chunk) }, (_, i) => body.subarray(i * chunk, (i + 1) * chunk));
  return buffer(Readable.from(chunks).pipe(createGzipMembers({ level: 1, blockBytes, inFlight })));
}

// Text-like bytes compress a lot, random bytes not at all: so member sizes differ widely and finish out of order.
const body = Buffer.concat(Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? randomBytes(50_000) : Buffer.from(`line ${i} of some text\n`.repeat(2_000)))));

describe('createGzipMembers', () => {
  it('writes one gzip member per block, in order, that gunzip reads back as the input', async () => {
    for (const inFlight of [1, 2, 4]) {
      const out = await compress(body, 30_000, 200_000, inFlight);
      // A block is closed by the first chunk that reaches blockBytes, so blocks are whole chunks: 7 chunks (210,000 bytes).
      const blocks = Array.from({ length: Math.ceil(body.length / 210_000) }, (_, i) => body.subarray(i * 210_000, (i + 1) * 210_000));
      expect(out.equals(Buffer.concat(blocks.map((b) => gzipSync(b, { level: 1 }))))).toBe(true);
      expect(gunzipSync(out).equals(body)).toBe(true);
    }
  });

  it('an empty input is one empty member, a valid gzip file', async () => {
    const out = await compress(Buffer.alloc(0), 1, 100, 2);
    expect(out.equals(gzipSync(Buffer.alloc(0), { level: 1 }))).toBe(true);
    expect(gunzipSync(out).length).toBe(0);
  });

  it('a consumer that fails fails the pipeline instead of leaving the compressor waiting', async () => {
    const failing = new Writable({ write: (_chunk, _encoding, done) => done(new Error('disk full')) });
    await expect(pipeline(Readable.from([body]), createGzipMembers({ level: 1, blockBytes: 100_000, inFlight: 2 }), failing)).rejects.toThrow('disk full');
  });
});
