/**
 * Gzip compression on several cores: the input is cut into blocks that are compressed at once on libuv's thread pool
 * and written, in order, as consecutive gzip members (RFC 1952 §2.2; gunzip, Node's zlib and Python's gzip read
 * them as one stream). Written here, over Node's zlib, because zlib's stream compresses one chunk at a time on one
 * thread and no maintained npm package was found that compresses blocks concurrently.
 */
import { Transform } from 'node:stream';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);

/** How a gzip-members stream cuts and compresses. */
export interface GzipMembersOptions {
  /** zlib level (1 fastest). */
  level: number;
  /** Input bytes per member. */
  blockBytes: number;
  /** Members compressing at once; the stream takes no more input until the oldest is written. */
  inFlight: number;
}

/** A drop-in for zlib's createGzip whose output is one gzip member per `blockBytes` of input (an empty input: one empty member). */
export function createGzipMembers(options: GzipMembersOptions): Transform {
  let parts: Buffer[] = [];
  let bytes = 0;
  let members = 0;
  const pending: Promise<Buffer>[] = [];
  const cut = () => {
    const member = gzipAsync(Buffer.concat(parts, bytes), { level: options.level });
    // Awaited in order below; until then a failure must not count as unhandled.
    member.catch(() => {});
    pending.push(member);
    parts = [];
    bytes = 0;
    members++;
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      parts.push(chunk);
      bytes += chunk.length;
      if (bytes < options.blockBytes) return done();
      cut();
      void drainTo(this, pending, options.inFlight).then(() => done(), done);
    },
    flush(done) {
      if (bytes > 0 || members === 0) cut();
      void drainTo(this, pending, 0).then(() => done(), done);
    },
  });
}

/** Pushes the oldest compressed members, in order, until at most `keep` are left compressing. */
async function drainTo(stream: Transform, pending: Promise<Buffer>[], keep: number): Promise<void> {
  while (pending.length > keep) stream.push(await pending.shift()!);
}
