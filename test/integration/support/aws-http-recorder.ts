/**
 * Records AWS requests at the HTTP layer: a loopback proxy in front of an endpoint (the emulator, the billing
 * endpoint) that passes every request through and notes what it was. Unlike the SDK middleware of
 * src/store/aws-calls.ts, it sees every client however it was built (a bare `new S3Client({})` included), and the
 * trainer process as well as the in-process handlers.
 *
 * Who made a request is read from its SigV4 signature: each actor (a Lambda function, the trainer, the state
 * machine) is given its own access key id in its environment, as each gets its own role's credentials on AWS, and
 * every SDK client takes its credentials from there. A request signed with a key this recorder did not hand out,
 * or not signed at all, is recorded with a problem, and so is a request it cannot parse: neither can pass the
 * conformance test unexamined.
 *
 * Each request is parsed into the SDK command it stands for (S3's REST API by method, path, subresource and
 * x-amz-copy-source; the JSON protocols by X-Amz-Target or path; the query protocol by its Action), so the IAM
 * mapping of iam-requests.ts serves both records.
 */
import { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RecordedCall } from './aws-call-recorder.js';

/** One HTTP request through the proxy. */
export interface HttpCall {
  /** The actor whose access key signed it, or "(unsigned)" / "(unknown key <id>)". */
  stage: string;
  /** Method, path and query as sent, e.g. "GET /bucket/datasets/sst2/train.tsv?x-id=GetObject". */
  http: string;
  /** The SDK command the request stands for, with its scalar parameters; absent when `problem` says why. */
  call?: RecordedCall;
  /** Why this request cannot be judged: not attributable to an actor, or not a request this recorder can parse. */
  problem?: string;
}

/** What a parse yields: the call without its stage, or why there is none. */
type Parsed = Omit<RecordedCall, 'stage'> | { problem: string };

/** Client class names of the JSON protocols by X-Amz-Target prefix. */
const TARGET_CLIENTS: Record<string, string> = {
  AWSStepFunctions: 'SFNClient',
  Logs_20140328: 'CloudWatchLogsClient',
  AWSEvents: 'EventBridgeClient',
};

/** Batch's REST-JSON operations by path (POST /v1/<operation in lower case>). */
const BATCH_OPERATIONS = ['DescribeJobs', 'SubmitJob', 'ListJobs', 'TerminateJob', 'CancelJob', 'DescribeJobQueues', 'DescribeJobDefinitions'];

/** Client class names of the query protocol by signing name. */
const QUERY_CLIENTS: Record<string, string> = { sts: 'STSClient' };

/**
 * Query parameters of S3 requests that do not change which operation a request is: the SDK's operation hint,
 * versions, multipart part numbers and upload ids (their presence is checked where it matters), response header
 * overrides, presigned-URL parameters and list options.
 */
const S3_PLAIN_PARAMETERS = /^(x-id|versionId|partNumber|uploadId|response-[\w-]+|X-Amz-[\w-]+|prefix|delimiter|max-keys|continuation-token|start-after|fetch-owner|encoding-type|marker|key-marker|version-id-marker|upload-id-marker|max-uploads|max-parts|part-number-marker)$/i;

/** An error response's code: S3's XML <Code>, a JSON protocol's __type or x-amzn-errortype, else the status. */
function errorName(status: number, headers: IncomingHttpHeaders, body: string, method: string): string | undefined {
  if (status < 300) return undefined;
  const xml = /<Code>([^<]+)<\/Code>/.exec(body);
  if (xml) return xml[1];
  const header = headers['x-amzn-errortype'];
  const type = typeof header === 'string' ? header : (/"__type"\s*:\s*"([^"]+)"/.exec(body)?.[1] ?? undefined);
  if (type) return type.split(':')[0]!.split('#').pop();
  // A HEAD has no body: the SDK names its errors by status, as here.
  if (method === 'HEAD') return ({ 304: 'NotModified', 403: 'Forbidden', 404: 'NotFound', 412: 'PreconditionFailed' } as Record<number, string>)[status] ?? String(status);
  return String(status);
}

/** The scalar members and string lists of a JSON request body, as RecordedCall keeps parameters. */
function scalars(body: string): RecordedCall['params'] {
  const params: RecordedCall['params'] = {};
  if (body.trim() === '') return params;
  for (const [k, v] of Object.entries(JSON.parse(body) as Record<string, unknown>)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') params[k] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) params[k] = v as string[];
  }
  return params;
}

/** Text of an XML element with its entities resolved. */
function xmlText(text: string): string {
  const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return text.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (all, e: string) =>
    e.startsWith('#x') || e.startsWith('#X') ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith('#') ? String.fromCodePoint(Number(e.slice(1))) : (entities[e] ?? all),
  );
}

/** The bucket and key of a path-style S3 request (key '' for a bucket request); clients address the proxy's IP path-style. */
function s3Target(path: string): { bucket: string; key: string } {
  const segments = path.split('/').slice(1);
  return { bucket: decodeURIComponent(segments[0] ?? ''), key: segments.slice(1).map(decodeURIComponent).join('/') };
}

/** An S3 REST request as the SDK command it stands for. */
function parseS3(method: string, url: URL, headers: IncomingHttpHeaders, body: string): Parsed {
  const { bucket, key } = s3Target(url.pathname);
  const q = url.searchParams;
  const subresources = [...q.keys()].filter((k) => !S3_PLAIN_PARAMETERS.test(k));
  const opt = (name: string, param: string): RecordedCall['params'] => (q.has(name) ? { [param]: q.get(name)! } : {});
  const copySource = typeof headers['x-amz-copy-source'] === 'string' ? decodeURIComponent(headers['x-amz-copy-source']) : undefined;
  const s3 = (command: string, params: RecordedCall['params']): Parsed => ({ client: 'S3Client', command: `${command}Command`, params: { Bucket: bucket, ...params } });
  const unknown = (): Parsed => ({ problem: `an S3 request this recorder cannot name (${method}, subresources: ${subresources.join(', ') || 'none'}); add it to aws-http-recorder.ts` });
  if (bucket === '') return method === 'GET' && subresources.length === 0 ? { client: 'S3Client', command: 'ListBucketsCommand', params: {} } : unknown();

  if (key === '') {
    const only = (sub: string) => subresources.length === 1 && subresources[0] === sub;
    if (method === 'HEAD' && subresources.length === 0) return s3('HeadBucket', {});
    if (method === 'GET' && only('list-type') && q.get('list-type') === '2') {
      const maxKeys: RecordedCall['params'] = q.has('max-keys') ? { MaxKeys: Number(q.get('max-keys')) } : {};
      return s3('ListObjectsV2', { ...opt('prefix', 'Prefix'), ...opt('delimiter', 'Delimiter'), ...maxKeys });
    }
    if (method === 'GET' && subresources.length === 0) return s3('ListObjects', { ...opt('prefix', 'Prefix'), ...opt('delimiter', 'Delimiter') });
    if (method === 'GET' && only('versions')) return s3('ListObjectVersions', { ...opt('prefix', 'Prefix') });
    if (method === 'GET' && only('uploads')) return s3('ListMultipartUploads', { ...opt('prefix', 'Prefix') });
    if (method === 'POST' && only('delete')) return s3('DeleteObjects', { Keys: [...body.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => xmlText(m[1]!)) });
    return unknown();
  }

  const version = opt('versionId', 'VersionId');
  if (subresources.length > 0) {
    if (method === 'POST' && subresources.length === 1 && subresources[0] === 'uploads') return s3('CreateMultipartUpload', { Key: key });
    return unknown();
  }
  switch (method) {
    case 'GET':
      return q.has('uploadId') ? s3('ListParts', { Key: key }) : s3('GetObject', { Key: key, ...version });
    case 'HEAD':
      return s3('HeadObject', { Key: key, ...version });
    case 'PUT':
      if (q.has('uploadId')) return s3(copySource === undefined ? 'UploadPart' : 'UploadPartCopy', { Key: key, ...(copySource === undefined ? {} : { CopySource: copySource }) });
      return copySource === undefined ? s3('PutObject', { Key: key }) : s3('CopyObject', { Key: key, CopySource: copySource });
    case 'POST':
      return q.has('uploadId') ? s3('CompleteMultipartUpload', { Key: key }) : unknown();
    case 'DELETE':
      return q.has('uploadId') ? s3('AbortMultipartUpload', { Key: key }) : s3('DeleteObject', { Key: key, ...version });
    default:
      return unknown();
  }
}

/** A request of a JSON or query protocol service (Step Functions, CloudWatch Logs, Batch, STS, ...) as its SDK command. */
function parseJsonOrQuery(service: string, method: string, url: URL, headers: IncomingHttpHeaders, body: string): Parsed {
  const target = headers['x-amz-target'];
  if (typeof target === 'string') {
    const [prefix, operation] = target.split('.');
    const client = TARGET_CLIENTS[prefix!];
    if (!client || !operation) return { problem: `X-Amz-Target ${target} (service ${service}): add its client to aws-http-recorder.ts` };
    return { client, command: `${operation}Command`, params: scalars(body) };
  }
  if (service === 'batch' && method === 'POST') {
    const operation = BATCH_OPERATIONS.find((op) => url.pathname === `/v1/${op.toLowerCase()}`);
    if (operation) return { client: 'BatchClient', command: `${operation}Command`, params: scalars(body) };
  }
  const action = new URLSearchParams(body).get('Action') ?? url.searchParams.get('Action');
  if (QUERY_CLIENTS[service] && action) return { client: QUERY_CLIENTS[service], command: `${action}Command`, params: {} };
  return { problem: `a ${service} request this recorder cannot name (${method} ${url.pathname}); add it to aws-http-recorder.ts` };
}

/** The access key id and signing service of a SigV4 request (header or presigned query), if signed. */
function signer(headers: IncomingHttpHeaders, url: URL): { keyId: string; service: string } | undefined {
  const auth = headers.authorization;
  const credential = (typeof auth === 'string' ? /Credential=([^,\s]+)/.exec(auth)?.[1] : undefined) ?? url.searchParams.get('X-Amz-Credential') ?? undefined;
  if (!credential) return undefined;
  // <key id>/<date>/<region>/<service>/aws4_request
  const [keyId, , , service] = credential.split('/');
  return keyId && service ? { keyId, service } : undefined;
}

/** Where the proxies listen: an IP address, so SDK clients address buckets path-style. */
const PROXY_HOST = '127.0.0.1';

/** Requests whose body the parse needs (small: JSON and query protocols, S3's DeleteObjects list); others stream. */
function needsBody(service: string | undefined, url: URL): boolean {
  return service !== 's3' || url.searchParams.has('delete');
}

/** Records every request through its proxies, attributed to the actor whose access key signed it. */
export class HttpCallRecorder {
  readonly calls: HttpCall[] = [];
  private readonly stages = new Map<string, string>();
  private readonly servers: ReturnType<typeof createServer>[] = [];

  /** The access key id `stage` signs with (give it to that actor's environment as AWS_ACCESS_KEY_ID). */
  accessKeyId(stage: string): string {
    const id = `iam-it-${stage.replace(/[^a-z0-9]+/gi, '-')}`;
    this.stages.set(id, stage);
    return id;
  }

  /** Starts a proxy in front of `target` (e.g. http://127.0.0.1:4566); returns its endpoint. */
  async proxy(target: string): Promise<string> {
    const upstream = new URL(target);
    const server = createServer((req, res) => {
      this.forward(upstream, req, res).catch((err: unknown) => res.headersSent ? res.destroy(err as Error) : res.writeHead(502).end(String(err)));
    });
    this.servers.push(server);
    await new Promise<void>((ready) => server.listen(0, PROXY_HOST, ready));
    return `http://${PROXY_HOST}:${(server.address() as AddressInfo).port}`;
  }

  /** Stops every proxy. */
  async close(): Promise<void> {
    await Promise.all(
      this.servers.map((s) => {
        s.closeAllConnections();
        return new Promise<void>((done) => s.close(() => done()));
      }),
    );
  }

  private async forward(upstream: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://proxy');
    const signed = signer(req.headers, url);
    let body: Buffer | undefined;
    if (needsBody(signed?.service, url)) {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      body = Buffer.concat(chunks);
    }
    const entry: HttpCall = { stage: '(unsigned)', http: `${method} ${req.url ?? '/'}` };
    this.calls.push(entry);
    if (!signed) entry.problem = 'an unsigned request: on AWS it would be anonymous';
    else {
      const stage = this.stages.get(signed.keyId);
      entry.stage = stage ?? `(unknown key ${signed.keyId})`;
      if (stage === undefined) entry.problem = `signed with access key "${signed.keyId}", which no actor of the run was given`;
      const text = body?.toString('utf8') ?? '';
      const parsed = signed.service === 's3' ? parseS3(method, url, req.headers, text) : parseJsonOrQuery(signed.service, method, url, req.headers, text);
      if ('problem' in parsed) entry.problem ??= parsed.problem;
      else if (stage !== undefined) entry.call = { stage, ...parsed };
    }

    const answer = await new Promise<IncomingMessage>((resolve, reject) => {
      const out = request({ host: upstream.hostname, port: upstream.port, method, path: req.url, headers: { ...req.headers, host: upstream.host } }, resolve);
      out.on('error', reject);
      if (body) out.end(body);
      else req.pipe(out);
    });
    const status = answer.statusCode ?? 502;
    res.writeHead(status, answer.headers);
    const errorChunks: Buffer[] = [];
    answer.on('data', (c: Buffer) => {
      if (status >= 300 && errorChunks.length < 64) errorChunks.push(c);
    });
    answer.on('end', () => {
      const error = errorName(status, answer.headers, Buffer.concat(errorChunks).toString('utf8'), method);
      if (entry.call && error !== undefined) entry.call.error = error;
    });
    answer.pipe(res);
  }
}
