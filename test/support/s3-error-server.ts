import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A loopback endpoint that fails every request the way S3 does, and counts the requests it answered. */
export interface S3ErrorServer {
  endpoint: string;
  requests: () => number;
  close: () => Promise<void>;
}

/**
 * Starts an HTTP server on 127.0.0.1 that answers every request as S3 answers a failed one: `status` with S3's
 * `<Error>` XML body (e.g. 503 SlowDown). The real SDK then parses it into the error it raises on AWS.
 */
export async function s3ErrorServer(status: number, code: string, message: string): Promise<S3ErrorServer> {
  let requests = 0;
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${message}</Message><RequestId>0F2A7C3E1B9D4E5F</RequestId><HostId>test-host</HostId></Error>`;
  const server = createServer((req, res) => {
    requests += 1;
    req.resume();
    res.writeHead(status, { 'content-type': 'application/xml', 'x-amz-request-id': '0F2A7C3E1B9D4E5F' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () => new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
  };
}
