/**
 * Resumable, checksummed downloads into a cache folder. Bytes go to `<file>.partial`; a dropped connection resumes
 * from its end with an HTTP Range request (also in a later process), and only a file whose sha256 matches the
 * expected one is renamed to its name. A mismatch removes the partial file, so the next try starts clean.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import { httpStatusError, isTransient, networkError } from '../errors/classify.js';
import { InvalidDataError, TransientError } from '../errors/index.js';
import { redact, redactUrl } from '../errors/redact.js';
import type { ProgressTask, Reporter } from '../run/reporter.js';
import { sha256OfFile } from './files.js';

/** One file to download. */
export interface Download {
  url: string;
  /** Where the verified file lands. */
  dest: string;
  /** Verified when given; a mismatch throws, naming the file and both hashes. */
  sha256?: string;
  /** Request headers (e.g. Authorization); never logged. */
  headers?: Record<string, string>;
  /** Progress label, e.g. the file name. */
  label: string;
}

/** Tries per file: the first plus resumptions after a dropped connection or a transient server error. */
const ATTEMPTS = 5;

/** Downloads one file (resuming a `.partial` one) and returns its sha256; see the module comment. */
export async function downloadFile(d: Download, reporter: Reporter): Promise<string> {
  const partial = `${d.dest}.partial`;
  await mkdir(dirname(d.dest), { recursive: true });
  // One progress bar across resumptions, in KiB (whole units keep the bar's counts readable).
  let task: ProgressTask | undefined;
  let shownKiB = 0;
  const show = (seen: number, total: number) => {
    task ??= reporter.task(d.label, Math.max(Math.ceil(total / 1024), 1), 'KiB');
    const kib = Math.floor(seen / 1024);
    if (kib > shownKiB) task.tick(kib - shownKiB);
    shownKiB = Math.max(kib, shownKiB);
  };
  for (let attempt = 1; ; attempt++) {
    try {
      await fetchRest(d, partial, show);
      break;
    } catch (err) {
      if (!(err instanceof TransientError) || attempt >= ATTEMPTS) throw err;
      const have = await sizeOf(partial);
      reporter.log(`${d.label}: ${err.message}; resuming at byte ${have} (try ${attempt + 1} of ${ATTEMPTS})`);
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  }
  task?.done();
  const actual = await sha256OfFile(partial);
  if (d.sha256 !== undefined && actual !== d.sha256) {
    await rm(partial, { force: true });
    throw new InvalidDataError(
      `${basename(d.dest)} from ${redactUrl(d.url)} has the wrong sha256: expected ${d.sha256}, got ${actual}. ` +
        'The download is corrupt or the source changed; it was deleted and nothing was installed.',
    );
  }
  await rename(partial, d.dest);
  return actual;
}

/** One request for the bytes the partial file lacks, appended to it; `show(seen, total)` reports bytes on disk. */
async function fetchRest(d: Download, partial: string, show: (seen: number, total: number) => void): Promise<void> {
  const have = await sizeOf(partial);
  let res: Response;
  try {
    res = await fetch(d.url, { headers: { ...d.headers, ...(have > 0 ? { Range: `bytes=${have}-` } : {}) } });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw networkError(`GET ${redactUrl(d.url)} failed: ${redact(cause ?? (err as Error).message)}`, err);
  }
  if (res.status === 416 && have > 0) {
    // The partial file is not a prefix the server can continue (the file changed, or it is already whole): restart.
    await res.body?.cancel();
    await rm(partial, { force: true });
    throw new TransientError(`the server cannot continue the partial download (HTTP 416)`);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw httpStatusError(`GET ${redactUrl(d.url)} failed: HTTP ${res.status} ${res.statusText}`, res.status);
  }
  // A server that ignores Range answers 200 with the whole file: start over instead of appending.
  const offset = res.status === 206 ? have : 0;
  const length = Number(res.headers.get('content-length'));
  const total = offset + (Number.isFinite(length) && length > 0 ? length : 0);
  let seen = offset;
  show(seen, total);
  const counted = async function* (chunks: AsyncIterable<Buffer>) {
    for await (const chunk of chunks) {
      seen += chunk.length;
      show(seen, total);
      yield chunk;
    }
  };
  try {
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), counted, createWriteStream(partial, { flags: offset > 0 ? 'a' : 'w' }));
  } catch (err) {
    // What arrived stays in the partial file; a transient failure (a reset, a closed socket) is resumed by the caller.
    const message = `connection lost after ${seen} bytes (${redact((err as Error).message)})`;
    throw isTransient(err) || (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? new TransientError(message, { cause: err }) : networkError(message, err);
  }
  if (total > 0 && seen < total) throw new TransientError(`the server closed the response after ${seen} of ${total} bytes`);
}

async function sizeOf(path: string): Promise<number> {
  return (await stat(path).catch(() => undefined))?.size ?? 0;
}
