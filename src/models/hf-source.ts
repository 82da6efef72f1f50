/**
 * `hf:<repo>[@revision]`: a checkpoint folder from the Hugging Face Hub, file by file through its resolve URLs
 * (`<endpoint>/<repo>/resolve/<revision>/<file>`). The Hub answers a resolve request for a large (LFS) file with a
 * redirect to its CDN and the file's sha256 in `X-Linked-Etag` (`ETag` when it serves the file itself); that hash is
 * what the download is checked against. `HF_ENDPOINT` names another hub or a mirror, `HF_TOKEN` is sent as a bearer
 * token to the hub only (never to the CDN it redirects to, whose signed URLs carry their own authorisation).
 */
import { join } from 'node:path';
import { httpStatusError, networkError } from '../errors/classify.js';
import { InvalidDataError, MissingInputError, type TextshiftError } from '../errors/index.js';
import { redact, redactUrl } from '../errors/redact.js';
import type { Reporter } from '../run/reporter.js';
import { downloadFile } from './download.js';
import { sha256OfFile } from './files.js';

/** A Hub repository at a revision (branch, tag or commit). */
export interface HfSource {
  kind: 'hf';
  repo: string;
  revision: string;
}

const REQUIRED = ['config.json', 'model.safetensors'] as const;
/** Tokenizer files: one of tokenizer.json or vocab.txt must exist; the others refine it when present. */
const OPTIONAL = ['tokenizer.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json'] as const;

/** What the Hub says about one file before it is downloaded. */
interface ResolvedFile {
  /** Where the bytes are (the CDN for LFS files). */
  url: string;
  /** The LFS sha256 the Hub reports, when it is an LFS file. */
  sha256?: string;
}

/** The Hub's base URL: `HF_ENDPOINT`, else huggingface.co. */
export function hfEndpoint(env: NodeJS.ProcessEnv): string {
  return (env['HF_ENDPOINT'] || 'https://huggingface.co').replace(/\/+$/, '');
}

/** Downloads the checkpoint files into `<cache>/hf/<repo>/<revision>/` and returns that folder. */
export async function downloadHfFolder(src: HfSource, cache: string, reporter: Reporter, env: NodeJS.ProcessEnv): Promise<string> {
  const endpoint = hfEndpoint(env);
  const folder = join(cache, 'hf', ...src.repo.split('/'), encodeURIComponent(src.revision));
  const token = env['HF_TOKEN'];
  const auth = (url: string): Record<string, string> =>
    token && new URL(url).origin === new URL(endpoint).origin ? { Authorization: `Bearer ${token}` } : {};
  let tokenizer = false;
  for (const file of [...REQUIRED, ...OPTIONAL]) {
    const resolveUrl = `${endpoint}/${src.repo}/resolve/${encodeURIComponent(src.revision)}/${file}`;
    const resolved = await resolveFile(resolveUrl, auth(resolveUrl));
    if (!resolved) {
      if ((REQUIRED as readonly string[]).includes(file)) throw new MissingInputError(`${redactUrl(resolveUrl)}: not found (HTTP 404); a BERT checkpoint has ${REQUIRED.join(' and ')}`);
      continue;
    }
    if (file === 'tokenizer.json' || file === 'vocab.txt') tokenizer = true;
    const dest = join(folder, file);
    if (resolved.sha256 && (await sha256OfFile(dest).catch(() => undefined)) === resolved.sha256) {
      reporter.log(`${file}: in the cache, sha256 ok`);
      continue;
    }
    if (file === 'model.safetensors' && !resolved.sha256) reporter.log(`${file}: the hub reports no sha256 (not an LFS file); not verified`);
    await downloadFile({ url: resolved.url, dest, label: file, headers: auth(resolved.url), ...(resolved.sha256 ? { sha256: resolved.sha256 } : {}) }, reporter);
  }
  if (!tokenizer) throw new MissingInputError(`${redactUrl(endpoint)}/${src.repo} at ${src.revision}: no tokenizer.json or vocab.txt`);
  return folder;
}

/** HEAD of a resolve URL without following the CDN redirect: the file's location and LFS sha256; undefined on 404. */
async function resolveFile(url: string, headers: Record<string, string>): Promise<ResolvedFile | undefined> {
  let at = url;
  // Relative redirects stay on the hub (a renamed repository); an absolute one to another host is the CDN.
  for (let hop = 0; hop < 5; hop++) {
    let res: Response;
    try {
      res = await fetch(at, { method: 'HEAD', redirect: 'manual', headers });
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message;
      throw networkError(`HEAD ${redactUrl(at)} failed: ${redact(cause ?? (err as Error).message)}`, err);
    }
    if (res.status === 404) return undefined;
    const location = res.headers.get('location');
    const sha256 = lfsSha256(res.headers.get('x-linked-etag') ?? res.headers.get('etag'));
    if (res.status >= 300 && res.status < 400 && location) {
      const next = new URL(location, at);
      if (next.origin === new URL(at).origin && !sha256) {
        at = next.href;
        continue;
      }
      return { url: next.href, ...(sha256 ? { sha256 } : {}) };
    }
    if (!res.ok) throw hubError(`HEAD ${redactUrl(at)} failed: HTTP ${res.status} ${res.statusText}`, res.status);
    return { url: at, ...(sha256 ? { sha256 } : {}) };
  }
  throw new InvalidDataError(`${redactUrl(url)}: more than 5 redirects`);
}

/** A refused request; 401/403 say how to authenticate (a gated or private repository). */
function hubError(message: string, status: number): TextshiftError {
  if (status === 401 || status === 403) return new MissingInputError(`${message}: the repository is private or gated; set HF_TOKEN to a token that may read it`);
  return httpStatusError(message, status);
}

/** The sha256 inside an ETag (`"<64 hex>"`, possibly weak), or undefined for a git blob id or none. */
function lfsSha256(etag: string | null): string | undefined {
  const value = etag?.replace(/^W\//, '').replace(/"/g, '');
  return value && /^[0-9a-f]{64}$/.test(value) ? value : undefined;
}
