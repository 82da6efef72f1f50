import { crc32c } from '@aws-crypto/crc32c';
import { hostname } from 'node:os';
import type { BlobStore } from '../store/blob-store.js';
import { runKeys } from '../run/keys.js';
import type { ModelSummary } from '../run/records.js';
import { slug } from '../format/text.js';
import { InvalidInputError } from '../errors/index.js';

/**
 * TensorBoard event files: TFRecord framing around hand-encoded `tensorflow.Event` protocol buffers
 * (tensorflow/core/util/event.proto, summary.proto). Only the fields a scalar log needs are written:
 * Event{wall_time=1 double, step=2 int64, file_version=3 string, summary=5 Summary};
 * Summary{value=1 repeated Value}; Value{tag=1 string, simple_value=2 float}.
 */

/** One scalar point: `tag` at `step`, recorded at `wallTime` (Unix seconds, fractional). */
export interface ScalarEvent {
  tag: string;
  step: number;
  value: number;
  wallTime: number;
}

/** The version string TensorBoard expects in the first event of a file. */
export const FILE_VERSION = 'brain.Event:2';

/** TFRecord's CRC mask: rotate right by 15 bits and add a constant (so CRCs of CRCs stay well-distributed). */
export function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32c(data) >>> 0;
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** One TFRecord: uint64 length, masked CRC32C of the length bytes, data, masked CRC32C of the data (little-endian). */
export function tfRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + 4 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

/** The whole event file: a file_version event, then one summary event per scalar. */
export function encodeEventFile(events: ScalarEvent[], fileWallTime: number): Buffer {
  const records = [tfRecord(encodeEvent(fileWallTime, 0, { fileVersion: FILE_VERSION }))];
  for (const e of events) {
    if (!Number.isInteger(e.step) || e.step < 0) throw new InvalidInputError(`event ${e.tag}: step must be an integer >= 0, got ${e.step}`);
    records.push(tfRecord(encodeEvent(e.wallTime, e.step, { scalar: e })));
  }
  return Buffer.concat(records);
}

/** The scalars of one model: train/loss, val/loss, val/accuracy per epoch, timed by cumulative epoch seconds. */
export function modelScalarEvents(m: ModelSummary, startWallTime: number): ScalarEvent[] {
  const events: ScalarEvent[] = [];
  let t = startWallTime;
  for (const e of m.epochs) {
    t += e.seconds;
    events.push(
      { tag: 'train/loss', step: e.epoch, value: e.trainLoss, wallTime: t },
      { tag: 'val/loss', step: e.epoch, value: e.valLoss, wallTime: t },
      { tag: 'val/accuracy', step: e.epoch, value: e.valAccuracy, wallTime: t },
    );
  }
  return events;
}

/** `events.out.tfevents.<unix seconds>.<host>`, the name TensorBoard's loader looks for. */
export function eventFileName(wallTime: number, host: string): string {
  return `events.out.tfevents.${Math.floor(wallTime)}.${slug(host)}`;
}

/**
 * Writes `runs/<id>/logs/<model>/events.out.tfevents.*` for one trained model and returns its key; an existing
 * event file of that model is kept (a re-run of the stage writes nothing new).
 */
export async function writeModelEventFile(
  store: BlobStore,
  runId: string,
  model: ModelSummary,
  options: { startWallTime: number; host?: string },
): Promise<string> {
  const dir = runKeys(runId).logs(model.model);
  const existing = (await store.list(`${dir}/events.out.tfevents.`))[0];
  if (existing !== undefined) return existing.key;
  const key = `${dir}/${eventFileName(options.startWallTime, options.host ?? hostname())}`;
  await store.put(key, encodeEventFile(modelScalarEvents(model, options.startWallTime), options.startWallTime));
  return key;
}

function encodeEvent(wallTime: number, step: number, what: { fileVersion: string } | { scalar: ScalarEvent }): Uint8Array {
  const w = new ProtoWriter();
  w.tag(1, 1).double(wallTime);
  if (step !== 0) w.tag(2, 0).varint(step);
  if ('fileVersion' in what) {
    w.tag(3, 2).bytes(Buffer.from(what.fileVersion, 'utf8'));
  } else {
    const value = new ProtoWriter();
    value.tag(1, 2).bytes(Buffer.from(what.scalar.tag, 'utf8'));
    value.tag(2, 5).float(what.scalar.value);
    const summary = new ProtoWriter();
    summary.tag(1, 2).bytes(value.finish());
    w.tag(5, 2).bytes(summary.finish());
  }
  return w.finish();
}

/** Minimal protobuf wire-format writer for the handful of field types an Event uses. */
class ProtoWriter {
  private chunks: Buffer[] = [];

  tag(field: number, wireType: 0 | 1 | 2 | 5): this {
    return this.varint(field * 8 + wireType);
  }

  varint(value: number): this {
    const bytes: number[] = [];
    let v = value;
    while (v >= 0x80) {
      bytes.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    bytes.push(v);
    this.chunks.push(Buffer.from(bytes));
    return this;
  }

  double(value: number): this {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(value);
    this.chunks.push(b);
    return this;
  }

  float(value: number): this {
    const b = Buffer.alloc(4);
    b.writeFloatLE(value);
    this.chunks.push(b);
    return this;
  }

  bytes(data: Uint8Array): this {
    this.varint(data.length);
    this.chunks.push(Buffer.from(data));
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks);
  }
}
