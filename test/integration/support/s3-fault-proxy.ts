/**
 * A loopback HTTP proxy in front of the emulator's S3 that passes every request through, except, while a fault is
 * set, the requests it matches: those are answered as S3 answers an internal error (500 InternalError), so the
 * product's real S3 client fails them after its own retries. Lets a test make a stage fail halfway, at a chosen
 * request, without touching the stage's code.
 */
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Which requests fail: by method and path (path-style: `/<bucket>/<key>?<query>`). */
export type FaultMatch = (method: string, path: string) => boolean;

export interface S3FaultProxy {
  endpoint: string;
  /** Fails the requests `match` selects from now on; undefined passes everything through again. */
  fail(match: FaultMatch | undefined): void;
  /** Requests answered with the fault so far. */
  failed(): number;
  close(): Promise<void>;
}

const INTERNAL_ERROR =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>';

/** Starts the proxy in front of `target` (e.g. http://127.0.0.1:4566). */
export async function s3FaultProxy(target: string): Promise<S3FaultProxy> {
  const upstream = new URL(target);
  let match: FaultMatch | undefined;
  let failed = 0;
  const server = createServer((req: IncomingMessage, res) => {
    if (match?.(req.method ?? '', req.url ?? '')) {
      failed += 1;
      req.resume();
      res.writeHead(500, { 'content-type': 'application/xml' });
      res.end(INTERNAL_ERROR);
      return;
    }
    const forward = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', (err) => res.destroy(err));
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    fail: (m) => {
      match = m;
    },
    failed: () => failed,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}
