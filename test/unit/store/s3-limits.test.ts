// The part size of an S3 multipart upload, chosen from the object's size: S3 takes at most 10,000 parts of 5 MiB to
// 5 GiB, and objects up to 5 TiB here (src/store/s3-limits.ts). Fixed 5 MiB parts stopped checkpoints.zip at 48.8 GiB.
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../../src/errors/index.js';
import { partSizeFor, S3_MULTIPART, UNSIZED_UPLOAD_MAX_BYTES } from '../../../src/store/s3-limits.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const TiB = 1024 ** 4;

describe('partSizeFor (S3 multipart part size from the object size)', () => {
  it('keeps 5 MiB parts for unknown sizes and up to 10,000 × 5 MiB (48.8 GiB)', () => {
    expect(partSizeFor(undefined)).toBe(5 * MiB);
    expect(partSizeFor(0)).toBe(5 * MiB);
    expect(partSizeFor(UNSIZED_UPLOAD_MAX_BYTES)).toBe(5 * MiB);
    expect(UNSIZED_UPLOAD_MAX_BYTES).toBe(10_000 * 5 * MiB);
  });

  it('sizes the parts of a larger object so it fits 10,000 parts, in whole MiB', () => {
    expect(partSizeFor(UNSIZED_UPLOAD_MAX_BYTES + 1)).toBe(6 * MiB);
    // The archive: 439 M parameters × 12 bytes × 12 checkpoints = 63.2 GB (58.9 GiB) -> 7 MiB parts, 8,613 of them.
    const archive = 12 * 12 * 438_980_610;
    expect(partSizeFor(archive)).toBe(7 * MiB);
    expect(Math.ceil(archive / (7 * MiB))).toBe(8_613);
    // S3's largest object: 5 TiB / 10,000 = 524.3 MiB -> 525 MiB parts.
    expect(partSizeFor(5 * TiB)).toBe(525 * MiB);
  });

  it('every size up to 5 TiB gets the smallest whole-MiB part (at least 5 MiB, at most 5 GiB) that fits 10,000 parts', () => {
    const sizes = [1, 5 * MiB, 48 * GiB, 49 * GiB, 100 * GiB, 999 * GiB, TiB, 2.5 * TiB, 5 * TiB - 1, 5 * TiB];
    for (let s = 1; s < 5 * TiB; s = Math.ceil(s * 1.37) + 12_345) sizes.push(s);
    for (const size of sizes) {
      const part = partSizeFor(size);
      expect(part % MiB, `${size}`).toBe(0);
      expect(part).toBeGreaterThanOrEqual(S3_MULTIPART.minPartBytes);
      expect(part).toBeLessThanOrEqual(S3_MULTIPART.maxPartBytes);
      expect(Math.ceil(size / part), `${size} bytes in parts of ${part}`).toBeLessThanOrEqual(S3_MULTIPART.maxParts);
      if (part > S3_MULTIPART.minPartBytes) expect(Math.ceil(size / (part - MiB)), `${size}: a MiB less would do`).toBeGreaterThan(S3_MULTIPART.maxParts);
    }
  });

  it('refuses an object over S3\'s 5 TiB, or a size that is no size, naming the object', () => {
    expect(() => partSizeFor(5 * TiB + 1, 'runs/r1/checkpoints.zip')).toThrow(InvalidInputError);
    expect(() => partSizeFor(6 * TiB, 'runs/r1/checkpoints.zip')).toThrow(
      "runs/r1/checkpoints.zip is 6 TiB, above S3's largest object of 5 TiB (Amazon S3 multipart upload limits); it cannot be stored as one object",
    );
    expect(() => partSizeFor(Number.NaN, 'x')).toThrow('x: expected a size in bytes >= 0, got NaN');
    expect(() => partSizeFor(-1, 'x')).toThrow(InvalidInputError);
  });
});
