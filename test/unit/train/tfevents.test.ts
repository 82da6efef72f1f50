// Reads event files back with an independent reader: protobufjs compiled from the .proto text of Event and
// Summary (field numbers as in tensorflow/core/util/event.proto and framework/summary.proto), and a bitwise
// CRC32C written here from the polynomial, not the library the writer uses.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { encodeEventFile, eventFileName, maskedCrc32c, writeModelEventFile } from '../../../src/train/tfevents.js';
import { sampleResults } from '../../fixtures/report/sample-run.js';

const EVENT_PROTO = `
syntax = "proto3";
package tensorflow;
message Summary {
  message Value {
    string node_name = 7;
    string tag = 1;
    oneof value { float simple_value = 2; bytes obsolete_old_style_histogram = 3; }
  }
  repeated Value value = 1;
}
message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what { string file_version = 3; bytes graph_def = 4; Summary summary = 5; }
}`;
const Event = protobuf.parse(EVENT_PROTO).root.lookupType('tensorflow.Event');

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), one bit at a time. */
function crc32cBitwise(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
const mask = (crc: number) => ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;

interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  summary?: { value: { tag: string; simpleValue: number }[] };
}

/** Splits a TFRecord file, checking each length and both CRCs, and decodes every Event. */
function readRecords(file: Buffer): DecodedEvent[] {
  const events: DecodedEvent[] = [];
  let off = 0;
  while (off < file.length) {
    expect(file.length - off).toBeGreaterThanOrEqual(16);
    const lenBytes = file.subarray(off, off + 8);
    const len = Number(file.readBigUInt64LE(off));
    expect(file.readUInt32LE(off + 8)).toBe(mask(crc32cBitwise(lenBytes)));
    const data = file.subarray(off + 12, off + 12 + len);
    expect(data.length).toBe(len);
    expect(file.readUInt32LE(off + 12 + len)).toBe(mask(crc32cBitwise(data)));
    const obj = Event.toObject(Event.decode(data), { longs: Number, defaults: true, oneofs: true }) as DecodedEvent;
    events.push(obj);
    off += 12 + len + 4;
  }
  expect(off).toBe(file.length);
  return events;
}

describe('TensorBoard event files', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('masks CRC32C as TFRecord does (check value of "123456789" is 0xe3069283)', () => {
    expect(crc32cBitwise(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(maskedCrc32c(Buffer.from('123456789'))).toBe(mask(0xe3069283));
  });

  it('frames a file_version record first, then one scalar per tag per epoch, each with valid length and CRCs', () => {
    const file = encodeEventFile(
      [
        { tag: 'train/loss', step: 1, value: 0.6931, wallTime: 1_700_000_001.5 },
        { tag: 'val/accuracy', step: 300, value: 0.8125, wallTime: 1_700_000_002.25 },
      ],
      1_700_000_000.125,
    );
    const events = readRecords(file);
    expect(events).toHaveLength(3);
    expect(events[0]).toMatchObject({ wallTime: 1_700_000_000.125, step: 0, fileVersion: 'brain.Event:2' });
    expect(events[1]!.wallTime).toBe(1_700_000_001.5);
    expect(events[1]!.step).toBe(1);
    expect(events[1]!.summary!.value).toHaveLength(1);
    expect(events[1]!.summary!.value[0]!.tag).toBe('train/loss');
    expect(events[1]!.summary!.value[0]!.simpleValue).toBeCloseTo(0.6931, 6);
    // step 300 needs a two-byte varint
    expect(events[2]!.step).toBe(300);
    expect(events[2]!.summary!.value[0]!.simpleValue).toBe(Math.fround(0.8125));
  });

  it('writes logs/<model>/events.out.tfevents.<secs>.<host> with every epoch of the sample model', async () => {
    dir = await mkdtemp(join(tmpdir(), 'textshift-tfevents-'));
    const store = new FsBlobStore(dir);
    const model = sampleResults().models.find((m) => m.model === 'bow_2')!;
    const start = 1_764_134_499.7;
    const key = await writeModelEventFile(store, 'run-1', model, { startWallTime: start, host: 'build host' });
    expect(key).toBe(`runs/run-1/logs/bow_2/${eventFileName(start, 'build host')}`);
    expect(key.endsWith('/events.out.tfevents.1764134499.build-host')).toBe(true);
    expect(await readdir(join(dir, 'runs/run-1/logs/bow_2'))).toEqual(['events.out.tfevents.1764134499.build-host']);

    const events = readRecords(await readFile(store.pathOf(key)));
    expect(events[0]!.fileVersion).toBe('brain.Event:2');
    const scalars = events.slice(1).map((e) => ({ step: e.step, wallTime: e.wallTime, ...e.summary!.value[0]! }));
    expect(scalars).toHaveLength(3 * model.epochs.length);
    let t = start;
    model.epochs.forEach((ep, i) => {
      t += ep.seconds;
      const three = scalars.slice(3 * i, 3 * i + 3);
      expect(three.map((s) => s.tag)).toEqual(['train/loss', 'val/loss', 'val/accuracy']);
      expect(three.map((s) => s.step)).toEqual([ep.epoch, ep.epoch, ep.epoch]);
      expect(three.map((s) => s.simpleValue)).toEqual([ep.trainLoss, ep.valLoss, ep.valAccuracy].map(Math.fround));
      for (const s of three) expect(s.wallTime).toBeCloseTo(t, 6);
    });

    // A second write (a re-run of the stage) keeps the first file instead of adding another.
    const again = await writeModelEventFile(store, 'run-1', model, { startWallTime: start + 100, host: 'other' });
    expect(again).toBe(key);
    expect(await readdir(join(dir, 'runs/run-1/logs/bow_2'))).toHaveLength(1);
  });
});
