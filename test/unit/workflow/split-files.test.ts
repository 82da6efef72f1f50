// Split files are written row by row: a finished writer stores every row, an aborted one stores nothing (not even
// a temp file), and a store that fails surfaces in write instead of hanging it.
import { readdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { tempStore } from '../../fixtures/data/temp-store.js';
import { openSplitWriter, readSplit } from '../../../src/workflow/split-files.js';

const rows = Array.from({ length: 5000 }, (_, i) => ({ text: `review ${i} ${'with some words '.repeat(i % 40)}`, label: i % 3 }));

describe('openSplitWriter', () => {
  it('stores the rows as gzipped JSON lines once finished, and nothing before', async () => {
    const store = await tempStore({});
    const writer = openSplitWriter(store, 'runs/r/splits/a/train.jsonl.gz');
    for (const row of rows) await writer.write(row);
    expect(await store.head('runs/r/splits/a/train.jsonl.gz')).toBeUndefined();
    await writer.finish();
    expect(await readSplit(store, 'runs/r/splits/a/train.jsonl.gz')).toEqual(rows);
  });

  it('an aborted writer leaves no object and no temp file, also when aborted before the store started reading', async () => {
    const store = await tempStore({});
    const writer = openSplitWriter(store, 'runs/r/splits/a/val.jsonl.gz');
    for (const row of rows) await writer.write(row);
    await writer.abort(new Error('the source changed'));
    expect(await store.head('runs/r/splits/a/val.jsonl.gz')).toBeUndefined();
    expect(readdirSync(store.pathOf('runs/r/splits/a'))).toEqual([]);
    const early = openSplitWriter(store, 'runs/r/splits/a/early.jsonl.gz');
    await early.write(rows[0]!);
    await early.abort(new Error('the source changed'));
    expect(await store.head('runs/r/splits/a/early.jsonl.gz')).toBeUndefined();
    expect(readdirSync(store.pathOf('runs/r/splits/a'))).toEqual([]);
  });

  it('a store that fails makes write reject instead of waiting for a drain that never comes', async () => {
    const store = await tempStore({});
    const failing = Object.assign(Object.create(store) as typeof store, {
      async putStream(_key: string, body: Readable) {
        body.pause();
        throw new Error('S3 said no');
      },
    });
    const writer = openSplitWriter(failing, 'runs/r/splits/a/test.jsonl.gz');
    const writeAll = async () => {
      for (const row of rows) await writer.write(row);
      await writer.finish();
    };
    await expect(writeAll()).rejects.toThrow('S3 said no');
  });
});
