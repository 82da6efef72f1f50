/**
 * Loopback stand-ins for the Hugging Face Hub (with a CDN on another origin, as huggingface.co redirects LFS files)
 * and a PyPI simple index, serving real files, with the faults the fetch tests need: a connection dropped mid-file
 * once, a wrong advertised sha256, corrupted bytes.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as a server saw it. */
export interface SeenRequest {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

/** What the servers serve and how they misbehave; change fields between requests. */
export interface HubFiles {
  /** Hub repository files by `<org>/<repo>/<file>` (model.safetensors is served as an LFS file through the CDN). */
  repo: Map<string, Buffer>;
  /** Wheels by file name, listed on the simple index under `package`. */
  wheels: Map<string, Buffer>;
  package: string;
  /** Index format: PEP 691 JSON or PEP 503 HTML. */
  indexFormat: 'json' | 'html';
  /** sha256 to advertise instead of the real one, by file name (hub X-Linked-Etag or index hash). */
  advertise: Map<string, string>;
  /** Serve these files with their first byte flipped. */
  corrupt: Set<string>;
  /** The next CDN or wheel download of a file stops after this fraction of its bytes, once. */
  dropOnce?: number;
}

export interface ModelHub {
  hubUrl: string;
  cdnUrl: string;
  /** The simple index URL (for TEXTSHIFT_PYPI_URL). */
  indexUrl: string;
  files: HubFiles;
  requests: SeenRequest[];
  close(): Promise<void>;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Starts the hub (also the index) and the CDN on ephemeral ports. */
export async function startModelHub(files: HubFiles): Promise<ModelHub> {
  const requests: SeenRequest[] = [];
  const record = (server: SeenRequest['server'], req: IncomingMessage) =>
    requests.push({
      server,
      method: req.method ?? 'GET',
      path: new URL(req.url ?? '/', 'http://x').pathname,
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
  const byLfsSha = new Map<string, { name: string; body: Buffer }>();
  let cdnUrl = '';
  let hubUrl = '';

  const cdn = createServer((req, res) => {
    record('cdn', req);
    const hit = byLfsSha.get(new URL(req.url ?? '/', 'http://x').pathname.slice('/lfs/'.length));
    if (!hit) return void res.writeHead(404).end();
    serveBytes(req, res, hit.name, hit.body);
  });
  const hub = createServer((req, res) => {
    record('hub', req);
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const resolve = /^\/(.+)\/resolve\/([^/]+)\/([^/]+)$/.exec(path);
    if (resolve) {
      const [, repo, , file] = resolve;
      const body = files.repo.get(`${repo}/${file}`);
      if (!body) return void res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end();
      if (file === 'model.safetensors') {
        const sha = sha256(body);
        byLfsSha.set(sha, { name: file, body });
        return void res
          .writeHead(302, { location: `${cdnUrl}/lfs/${sha}`, 'x-linked-etag': `"${files.advertise.get(file!) ?? sha}"`, 'x-linked-size': body.length, etag: '"0123456789abcdef0123456789abcdef01234567"' })
          .end();
      }
      // Small files are in git: the hub serves them itself with the git blob id as ETag (not a sha256).
      res.setHeader('etag', `"${createHash('sha1').update(body).digest('hex')}"`);
      return serveBytes(req, res, file!, body);
    }
    const page = /^\/simple\/([^/]+)\/$/.exec(path);
    if (page) {
      if (page[1] !== files.package) return void res.writeHead(404).end();
      const listed = [...files.wheels].map(([name, body]) => ({ name, sha: files.advertise.get(name) ?? sha256(body) }));
      if (files.indexFormat === 'json') {
        const json = { meta: { 'api-version': '1.1' }, name: files.package, files: listed.map((w) => ({ filename: w.name, url: `../../packages/${w.name}`, hashes: { sha256: w.sha } })) };
        return void res.writeHead(200, { 'content-type': 'application/vnd.pypi.simple.v1+json' }).end(JSON.stringify(json));
      }
      const links = listed.map((w) => `<a href="../../packages/${w.name}#sha256=${w.sha}" data-requires-python="&gt;=3.7">${w.name}</a><br />`);
      return void res.writeHead(200, { 'content-type': 'text/html' }).end(`<!DOCTYPE html><html><body>${links.join('\n')}</body></html>`);
    }
    const wheel = /^\/packages\/([^/]+)$/.exec(path);
    const body = wheel && files.wheels.get(wheel[1]!);
    if (body) return serveBytes(req, res, wheel[1]!, body);
    res.writeHead(404).end();
  });

  /** 200 or 206 (Range) with the file's bytes, corrupted or cut short when told to. */
  function serveBytes(req: IncomingMessage, res: ServerResponse, name: string, original: Buffer): void {
    const body = files.corrupt.has(name) ? Buffer.concat([Buffer.from([original[0]! ^ 0xff]), original.subarray(1)]) : original;
    const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    const headers = { 'content-type': 'application/octet-stream', 'content-length': body.length - start, 'accept-ranges': 'bytes' };
    if (start > 0) res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    else res.writeHead(200, headers);
    if (req.method === 'HEAD') return void res.end();
    const drop = files.dropOnce;
    if (drop !== undefined && body.length > 1 << 20) {
      files.dropOnce = undefined;
      const cut = start + Math.floor((body.length - start) * drop);
      res.write(body.subarray(start, cut), () => res.socket?.destroy());
      return;
    }
    res.end(body.subarray(start));
  }

  const listen = async (server: Server) => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  hubUrl = await listen(hub);
  cdnUrl = await listen(cdn);
  const close = (server: Server) => new Promise<void>((r) => server.close(() => r()));
  return {
    hubUrl,
    cdnUrl,
    indexUrl: `${hubUrl}/simple`,
    files,
    requests,
    close: async () => {
      hub.closeAllConnections();
      cdn.closeAllConnections();
      await Promise.all([close(hub), close(cdn)]);
    },
  };
}
