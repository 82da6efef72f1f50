import { describe, expect, it } from 'vitest';
import { InvalidDataError, TransientError } from '../../../src/errors/index.js';
import { redact, redactError, redactUrl } from '../../../src/errors/redact.js';
import { lineReporter } from '../../../src/run/reporter.js';
import { classified } from '../../../functions/shared/classified.js';

describe('redact', () => {
  it('hides the password of a URL, and a lone user name (a token), keeping scheme, host, port and path', () => {
    expect(redactUrl('https://alice:s3cret@pypi.example.com:8443/simple')).toBe('https://alice:***@pypi.example.com:8443/simple');
    expect(redactUrl('https://ghp_tok3n@pypi.example.com/simple/')).toBe('https://***@pypi.example.com/simple/');
    // A password with an unescaped "@": the userinfo ends at the last "@" before the path.
    expect(redactUrl('http://bob:p@ss@127.0.0.1:1/x')).toBe('http://bob:***@127.0.0.1:1/x');
    expect(redactUrl('https://pypi.org/simple')).toBe('https://pypi.org/simple');
  });

  it('hides credential query parameters (presigned S3, CDN signatures, tokens) and keeps the others', () => {
    const presigned =
      'https://b.s3.eu-west-1.amazonaws.com/k.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20250101%2Feu-west-1%2Fs3%2Faws4_request' +
      '&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-Security-Token=IQoJb3JpZ2lu&X-Amz-Signature=abcdef0123&X-Amz-SignedHeaders=host';
    expect(redactUrl(presigned)).toBe(
      'https://b.s3.eu-west-1.amazonaws.com/k.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***' +
        '&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-Security-Token=***&X-Amz-Signature=***&X-Amz-SignedHeaders=host',
    );
    expect(redactUrl('https://cdn-lfs.hf.co/repos/ab/cd?response-content-disposition=inline&Expires=1&Policy=eyJ&Signature=Zm9v&Key-Pair-Id=K3ES')).toBe(
      'https://cdn-lfs.hf.co/repos/ab/cd?response-content-disposition=inline&Expires=1&Policy=***&Signature=***&Key-Pair-Id=***',
    );
    expect(redactUrl('https://x.blob.core.windows.net/c/f?sv=2022&sig=QUJD&access_token=t0k&password=pw&page=2')).toBe(
      'https://x.blob.core.windows.net/c/f?sv=2022&sig=***&access_token=***&password=***&page=2',
    );
    // The fragment of a PEP 503 link is a checksum, not a secret.
    expect(redactUrl('https://files.example/p.whl#sha256=00ff')).toBe('https://files.example/p.whl#sha256=00ff');
  });

  it('finds every URL in free text, keeping the punctuation around it', () => {
    expect(redact('GET http://u:pw@127.0.0.1:9/simple/x/ failed: fetch failed (see https://h/a?token=abc).')).toBe(
      'GET http://u:***@127.0.0.1:9/simple/x/ failed: fetch failed (see https://h/a?token=***).',
    );
    expect(redact('"https://k@h/x", and s3://bucket/runs/a are fine')).toBe('"https://***@h/x", and s3://bucket/runs/a are fine');
    expect(redact('no URL here: user:pw@host')).toBe('no URL here: user:pw@host');
  });

  it('redactError redacts message and stack of the error and its causes, keeping class and name', () => {
    const cause = new Error('Request cannot be constructed from a URL that includes credentials: https://u:hunter2@idx/simple/');
    const err = new TransientError('GET https://u:hunter2@idx/simple/ failed', { cause });
    const out = redactError(err);
    expect(out).toBe(err);
    expect(out).toBeInstanceOf(TransientError);
    expect(out.name).toBe('TransientError');
    expect(out.message).toBe('GET https://u:***@idx/simple/ failed');
    expect(`${out.stack} ${cause.message} ${cause.stack}`).not.toContain('hunter2');
    expect(redactError(new InvalidDataError('plain')).message).toBe('plain');
  });
});

describe('where errors and logs leave the process', () => {
  it('a Lambda handler error leaves classified and redacted', async () => {
    const handler = classified(async () => {
      throw new Error('GET https://u:hunter2@mirror.example/simple/ failed: fetch failed');
    });
    const err = (await handler().catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('InternalError');
    expect(err.message).toBe('GET https://u:***@mirror.example/simple/ failed: fetch failed');
    expect(err.stack).not.toContain('hunter2');
  });

  it("the line reporter's log lines are redacted", () => {
    const lines: string[] = [];
    lineReporter((l) => lines.push(l)).log('model.bin: GET https://cdn.example/x?X-Amz-Signature=deadbeef failed; resuming');
    expect(lines).toEqual(['model.bin: GET https://cdn.example/x?X-Amz-Signature=*** failed; resuming']);
  });
});
