/**
 * A separate process for fs-partials.test.ts: streams a put of `key` that writes 1 MiB, says "writing" on stdout and
 * then waits for more bytes forever, so the test can kill it (or leave it running) mid-put.
 * Usage: node --import tsx fs-slow-writer.ts <root> <key>
 */
import { Readable } from 'node:stream';
import { FsBlobStore } from '../../../src/store/fs-store.js';

const [root, key] = process.argv.slice(2) as [string, string];
const body = Readable.from(
  (async function* () {
    yield Buffer.alloc(1 << 20, 7);
    // Once the first MiB is in the temp file.
    setTimeout(() => process.stdout.write('writing\n'), 200);
    // A timer keeps the process alive while the put waits (an empty event loop would end it).
    await new Promise(() => setInterval(() => undefined, 60_000));
  })(),
  { objectMode: false },
);
await new FsBlobStore(root).putStream(key, body);
