/**
 * A separate process for fs-store.test.ts: appends `<writer>.<i>` to the JSON list at `key` `count` times, each with
 * a read-modify-write that puts with ifMatch and starts over on a conflict. It starts at `startAt` (epoch ms), so
 * processes started one after another write at the same time.
 * Usage: node --import tsx fs-cas-writer.ts <root> <key> <writer> <count> <startAt>
 */
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { PreconditionFailedError } from '../../../src/store/blob-store.js';

const [root, key, writer, count, startAt] = process.argv.slice(2) as [string, string, string, string, string];
const store = new FsBlobStore(root);
await new Promise((r) => setTimeout(r, Number(startAt) - Date.now()));
for (let i = 0; i < Number(count); i++) {
  for (;;) {
    const { body, info } = (await store.getWithInfo(key))!;
    const seen = JSON.parse(body.toString()) as string[];
    seen.push(`${writer}.${i}`);
    try {
      await store.put(key, JSON.stringify(seen), { ifMatch: info.etag! });
      break;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
  }
}
