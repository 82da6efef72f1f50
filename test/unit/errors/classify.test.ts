// The retry classification: textshift's error classes, and classifyError on errors as the AWS SDK, Node's network
// stack and fetch really raise them (an S3 endpoint on loopback answering like S3, real refused connections and
// timeouts), since the state machine retries an error only when it leaves a Lambda named TransientError.
import { readFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyError, isTransient } from '../../../src/errors/classify.js';
import { EXIT_FAILURE, EXIT_TEMPFAIL, exitCodeOf } from '../../../src/errors/exit-code.js';
import {
  BudgetExceededError,
  ConfigError,
  InternalError,
  InvalidDataError,
  InvalidInputError,
  isRetryableName,
  MissingInputError,
  PermanentError,
  RETRYABLE_ERROR_NAMES,
  TextshiftError,
  TransientError,
} from '../../../src/errors/index.js';
import { DataError, MissingDatasetError } from '../../../src/data/errors.js';
import { ExperimentError } from '../../../src/config/experiment.js';
import { CsrError } from '../../../src/matrix/csr.js';
import { NotFoundError } from '../../../src/store/blob-store.js';
import { BucketNotFoundError } from '../../../src/store/s3-store.js';
import { RunFailedError } from '../../../src/workflow/stages/mark-failed.js';
import { s3ErrorServer, type S3ErrorServer } from '../../support/s3-error-server.js';

/** What a call rejected or threw with. */
async function failure(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

/** A loopback port nothing listens on: connections to it are refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** An SDK service exception as the S3 client builds it from an error response. */
function s3Exception(name: string, httpStatusCode: number, extra: Record<string, unknown> = {}): S3ServiceException {
  return Object.assign(new S3ServiceException({ name, $fault: httpStatusCode >= 500 ? 'server' : 'client', $metadata: { httpStatusCode }, message: `${name} happened` }), extra);
}

describe('error classes', () => {
  it('each existing error is a permanent TextshiftError of the right kind, under the name users and tests see', () => {
    const cases: [TextshiftError, abstract new (...args: never[]) => TextshiftError, string][] = [
      [new DataError('file:///d/a.tsv', 'a.tsv', 3, 'bad label'), InvalidDataError, 'DataError'],
      [new MissingDatasetError('SST-2', ['/a']), MissingInputError, 'MissingDatasetError'],
      [new ExperimentError('e.json', ['seed: expected number']), ConfigError, 'ExperimentError'],
      [new CsrError('cache/x.csr', 'truncated'), InvalidDataError, 'CsrError'],
      [new NotFoundError('s3://b', 'runs/x/manifest.json'), MissingInputError, 'NotFoundError'],
      [new BucketNotFoundError('textshift-data'), ConfigError, 'BucketNotFoundError'],
      [new RunFailedError({ runId: 'r', stage: 'Train', error: 'boom' }), PermanentError, 'RunFailed'],
    ];
    for (const [error, base, name] of cases) {
      expect(error, name).toBeInstanceOf(base);
      expect(error.name).toBe(name);
      expect(error.retryable, name).toBe(false);
    }
    // Messages are unchanged by the new bases.
    expect(new DataError('file:///d/a.tsv', 'a.tsv', 3, 'bad label').message).toBe('a.tsv:3: bad label');
  });

  it('the generic classes are named after themselves; a TransientError and its subclasses keep the one retryable name', () => {
    for (const [E, name] of [[ConfigError, 'ConfigError'], [InvalidInputError, 'InvalidInputError'], [InvalidDataError, 'InvalidDataError'], [MissingInputError, 'MissingInputError'], [InternalError, 'InternalError'], [BudgetExceededError, 'BudgetExceededError']] as const) {
      const e = new E('m');
      expect(e.name).toBe(name);
      expect(e.retryable).toBe(false);
      expect(e).toBeInstanceOf(PermanentError);
    }
    class ThrottledUpload extends TransientError {}
    const t = new ThrottledUpload('slow down');
    expect([t.name, t.retryable, t instanceof TransientError]).toEqual(['TransientError', true, true]);
    expect(RETRYABLE_ERROR_NAMES).toEqual(['TransientError']);
  });

  it('retryable names: ours and the AWS services\' transient task errors, nothing else', () => {
    expect(['TransientError', 'Lambda.ServiceException', 'Lambda.TooManyRequestsException', 'Batch.ServerException'].map(isRetryableName)).toEqual([true, true, true, true]);
    expect(['DataError', 'InternalError', 'States.TaskFailed', 'States.Timeout', 'Error', undefined].map(isRetryableName)).toEqual([false, false, false, false, false, false]);
  });

  it('a process exits 75 (EX_TEMPFAIL) for a retryable error and 1 otherwise', () => {
    expect([EXIT_TEMPFAIL, EXIT_FAILURE]).toEqual([75, 1]);
    expect(exitCodeOf(new TransientError('x'))).toBe(75);
    expect(exitCodeOf(new MissingInputError('x'))).toBe(1);
  });
});

describe('classifyError on S3 error responses parsed by the real SDK (loopback endpoint)', () => {
  const servers: Record<string, S3ErrorServer> = {};
  beforeAll(async () => {
    servers.slowDown = await s3ErrorServer(503, 'SlowDown', 'Please reduce your request rate.');
    servers.internal = await s3ErrorServer(500, 'InternalError', 'We encountered an internal error. Please try again.');
    servers.denied = await s3ErrorServer(403, 'AccessDenied', 'Access Denied');
  });
  afterAll(async () => {
    await Promise.all(Object.values(servers).map((s) => s.close()));
  });

  /** The error a GetObject through the named server fails with (one attempt: no SDK retries). */
  const getObjectError = (server: S3ErrorServer) => {
    const client = new S3Client({ endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    return failure(() => client.send(new GetObjectCommand({ Bucket: 'textshift-data', Key: 'runs/r/manifest.json' }))).finally(() => client.destroy());
  };

  it('503 SlowDown is transient; the wrapper keeps the message and the SDK error as its cause', async () => {
    const sdkError = await getObjectError(servers.slowDown!);
    expect(sdkError).toBeInstanceOf(S3ServiceException);
    expect(sdkError).toMatchObject({ name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
    const classified = classifyError(sdkError);
    expect(classified).toBeInstanceOf(TransientError);
    expect(classified.name).toBe('TransientError');
    expect(classified.message).toBe('Please reduce your request rate.');
    expect(classified.cause).toBe(sdkError);
  });

  it('500 InternalError is transient', async () => {
    expect(classifyError(await getObjectError(servers.internal!)).name).toBe('TransientError');
  });

  it('403 AccessDenied is not: an InternalError (retrying asks again with the same credentials)', async () => {
    const sdkError = await getObjectError(servers.denied!);
    expect(sdkError).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    const classified = classifyError(sdkError);
    expect(classified).toBeInstanceOf(InternalError);
    expect([classified.message, classified.retryable, classified.cause]).toEqual(['Access Denied', false, sdkError]);
  });
});

describe('classifyError on SDK service exceptions of other shapes', () => {
  it('throttling codes are transient whatever the status', () => {
    for (const name of ['ThrottlingException', 'TooManyRequestsException', 'SlowDown', 'RequestLimitExceeded', 'ProvisionedThroughputExceededException']) {
      expect(classifyError(s3Exception(name, 400)).name, name).toBe('TransientError');
    }
  });

  it('request timeouts, 429, any 5xx and errors the SDK marks $retryable are transient', () => {
    expect(classifyError(s3Exception('RequestTimeout', 400)).name).toBe('TransientError');
    expect(classifyError(s3Exception('RequestTimeoutException', 408)).name).toBe('TransientError');
    expect(classifyError(s3Exception('Unknown', 429)).name).toBe('TransientError');
    expect(classifyError(s3Exception('NotImplemented', 501)).name).toBe('TransientError');
    expect(classifyError(s3Exception('ServiceUnavailable', 503)).name).toBe('TransientError');
    expect(classifyError(s3Exception('InvalidObjectState', 403, { $retryable: {} })).name).toBe('TransientError');
  });

  it('other 4xx answers are InternalErrors', () => {
    for (const [name, status] of [['InvalidRequest', 400], ['NoSuchKey', 404], ['PreconditionFailed', 412]] as const) {
      expect(classifyError(s3Exception(name, status)), name).toBeInstanceOf(InternalError);
    }
  });
});

describe('classifyError on Node network errors and timeouts (real ones where this machine can raise them)', () => {
  it('a refused connection (ECONNREFUSED from a real socket) is transient', async () => {
    const port = await closedPort();
    const socketError = await new Promise<NodeJS.ErrnoException>((resolve) => connect(port, '127.0.0.1').on('error', resolve));
    expect(socketError.code).toBe('ECONNREFUSED');
    expect(classifyError(socketError).name).toBe('TransientError');
  });

  it('fetch failing on a refused connection (TypeError "fetch failed" with the socket error as cause) is transient', async () => {
    const fetchError = (await failure(async () => fetch(`http://127.0.0.1:${await closedPort()}/`))) as Error;
    expect([fetchError.name, fetchError.message]).toEqual(['TypeError', 'fetch failed']);
    const classified = classifyError(fetchError);
    expect([classified.name, classified.message, classified.cause]).toEqual(['TransientError', 'fetch failed', fetchError]);
  });

  it('a request that timed out (AbortSignal.timeout on a server that never answers) is transient', async () => {
    const server = createServer(() => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const timeout = await failure(() => fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { signal: AbortSignal.timeout(50) }));
      expect((timeout as Error).name).toBe('TimeoutError');
      expect(classifyError(timeout).name).toBe('TransientError');
    } finally {
      server.close();
    }
  });

  it('system and undici error codes: resets, broken pipes, DNS failures, unreachable networks, socket timeouts', () => {
    const system = (code: string, syscall: string) => Object.assign(new Error(`${syscall} ${code}`), { code, errno: -1, syscall });
    for (const code of ['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNREFUSED', 'ENETUNREACH', 'EHOSTUNREACH']) {
      expect(classifyError(system(code, 'read')).name, code).toBe('TransientError');
    }
    for (const code of ['EAI_AGAIN', 'ENOTFOUND']) expect(classifyError(system(code, 'getaddrinfo')).name, code).toBe('TransientError');
    for (const [name, code] of [['SocketError', 'UND_ERR_SOCKET'], ['ConnectTimeoutError', 'UND_ERR_CONNECT_TIMEOUT'], ['HeadersTimeoutError', 'UND_ERR_HEADERS_TIMEOUT'], ['BodyTimeoutError', 'UND_ERR_BODY_TIMEOUT']]) {
      const undici = Object.assign(new Error(name), { name, code });
      expect(classifyError(new TypeError('fetch failed', { cause: undici })).name, code).toBe('TransientError');
    }
  });

  it('an abort nobody timed (AbortController.abort()) and a missing file are not transient', async () => {
    const controller = new AbortController();
    controller.abort();
    const aborted = await failure(() => fetch('http://127.0.0.1:9/', { signal: controller.signal }));
    expect((aborted as Error).name).toBe('AbortError');
    expect(classifyError(aborted)).toBeInstanceOf(InternalError);
    const enoent = await failure(() => readFile('/nonexistent/textshift/file'));
    expect((enoent as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(classifyError(enoent)).toBeInstanceOf(InternalError);
  });

  it('an abort caused by a timeout is transient (found through its cause)', () => {
    const abort = Object.assign(new Error('The operation was aborted'), { name: 'AbortError', cause: new DOMException('The operation timed out.', 'TimeoutError') });
    expect(classifyError(abort).name).toBe('TransientError');
  });
});

describe('classifyError on everything else', () => {
  it('returns a TextshiftError as it is', () => {
    const data = new DataError('f', 'f', 1, 'bad');
    expect(classifyError(data)).toBe(data);
    const transient = new TransientError('x');
    expect(classifyError(transient)).toBe(transient);
  });

  it('a plain Error or a thrown non-Error is an InternalError keeping message and cause', () => {
    const plain = new RangeError('sliceRows: range [0, 9) is not within [0, 3]');
    expect(classifyError(plain)).toMatchObject({ name: 'InternalError', message: plain.message, cause: plain, retryable: false });
    expect(classifyError('a string')).toMatchObject({ name: 'InternalError', message: 'a string', cause: 'a string' });
    expect(classifyError(undefined).message).toBe('undefined');
  });

  it('an error that crossed a boundary by name only (a worker thread) keeps its classification', () => {
    expect(classifyError(Object.assign(new Error('read ECONNRESET'), { name: 'TransientError' })).name).toBe('TransientError');
    expect(classifyError(Object.assign(new Error('bad row'), { name: 'DataError' })).name).toBe('InternalError');
  });

  it('follows causes: a wrapped transient error is transient, a long chain of plain errors is not', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(isTransient(new Error('upload failed', { cause: new Error('part 3 failed', { cause: reset }) }))).toBe(true);
    let chain: Error = new Error('root');
    for (let i = 0; i < 20; i++) chain = new Error(`level ${i}`, { cause: chain });
    expect(isTransient(chain)).toBe(false);
  });
});
