/**
 * S3's multipart upload limits, and the part size an upload of a given size needs. Pure arithmetic (no SDK), so the
 * cost guard plans with the same numbers the S3 store uploads with.
 *
 * Amazon S3 User Guide, "Amazon S3 multipart upload limits" (docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html):
 * at most 10,000 parts per upload, parts of 5 MiB to 5 GiB (the last part may be smaller). The same page now gives
 * 48.8 TiB (10,000 parts of 5 GiB) as the largest object; it said 5 TiB for years, as S3-compatible stores (the
 * emulator, MinIO) still do, so 5 TiB is the bound kept here.
 */
import { InvalidInputError } from '../errors/index.js';
import { formatBytes } from '../format/text.js';

const MiB = 1024 * 1024;

/** S3's multipart upload limits (see the module comment for the source). */
export const S3_MULTIPART = {
  maxParts: 10_000,
  minPartBytes: 5 * MiB,
  maxPartBytes: 5 * 1024 * MiB,
  maxObjectBytes: 5 * 1024 * 1024 * MiB,
} as const;

/**
 * Parts an upload holds in memory at once: lib-storage's Upload sends `queueSize` (its default, 4) parts
 * concurrently, each a full part buffer, while the next part fills.
 */
export const UPLOAD_BUFFERED_PARTS = 5;

/**
 * The part size (bytes) of a multipart upload of at most `bytes`: the smallest whole number of MiB that fits it in
 * 10,000 parts, at least S3's 5 MiB. Unknown sizes get 5 MiB parts (objects up to 48.8 GiB). Throws
 * InvalidInputError, naming `what`, for a size S3 cannot store as one object.
 */
export function partSizeFor(bytes: number | undefined, what = 'the object'): number {
  if (bytes === undefined) return S3_MULTIPART.minPartBytes;
  if (!Number.isFinite(bytes) || bytes < 0) throw new InvalidInputError(`${what}: expected a size in bytes >= 0, got ${bytes}`);
  if (bytes > S3_MULTIPART.maxObjectBytes) {
    throw new InvalidInputError(
      `${what} is ${formatBytes(bytes)}, above S3's largest object of ${formatBytes(S3_MULTIPART.maxObjectBytes)} ` +
        '(Amazon S3 multipart upload limits); it cannot be stored as one object',
    );
  }
  const fitting = Math.ceil(Math.ceil(bytes / S3_MULTIPART.maxParts) / MiB) * MiB;
  return Math.min(S3_MULTIPART.maxPartBytes, Math.max(S3_MULTIPART.minPartBytes, fitting));
}

/** The largest object an upload of unknown size can store: 10,000 parts of the 5 MiB default (48.8 GiB). */
export const UNSIZED_UPLOAD_MAX_BYTES = S3_MULTIPART.maxParts * S3_MULTIPART.minPartBytes;
