import { gunzipSync, gzipSync } from 'node:zlib';
import type { BlobStore } from '../store/blob-store.js';
import type { Example } from '../data/read-table.js';
import { InvalidDataError } from '../errors/index.js';

/** Writes a dataset part as gzipped JSON lines `{"text": ..., "label": ...}`. */
export async function writeSplit(store: BlobStore, key: string, examples: readonly Example[]): Promise<void> {
  const lines = examples.map((e) => JSON.stringify({ text: e.text, label: e.label })).join('\n');
  await store.put(key, gzipSync(lines + (examples.length ? '\n' : ''), { level: 6 }));
}

/** Reads a part written by writeSplit; errors name the key and line. */
export async function readSplit(store: BlobStore, key: string): Promise<Example[]> {
  const text = gunzipSync(await store.getOrThrow(key)).toString('utf8');
  const out: Example[] = [];
  let line = 0;
  for (const row of text.split('\n')) {
    line++;
    if (row === '') continue;
    const e = JSON.parse(row) as Partial<Example>;
    if (typeof e.text !== 'string' || !Number.isInteger(e.label)) {
      throw new InvalidDataError(`${store.url}/${key}:${line}: expected {"text": string, "label": integer}`);
    }
    out.push(e as Example);
  }
  return out;
}
