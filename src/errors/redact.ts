/**
 * Keeps secrets out of what textshift prints and records. A URL may carry credentials in its userinfo
 * (`https://user:password@host`, as pip's PIP_INDEX_URL allows) or in its query (a presigned S3 URL's
 * X-Amz-Signature and X-Amz-Credential, a CDN's Signature, a `token=`): every URL in a message, log line or recorded
 * error is shown with those parts replaced by REDACTED, its scheme, host and path kept so the message still says
 * where a request went.
 */

/** What a secret is replaced with. */
export const REDACTED = '***';

/** Query parameters whose value is a credential, by exact name (case-insensitive). */
const SECRET_PARAMS = new Set(['sig', 'pwd', 'key', 'auth', 'policy', 'key-pair-id', 'code', 'session', 'x-amz-security-token']);
/** Query parameters whose value is a credential, by a part of their name (`access_token`, `X-Goog-Signature`, `api_key`). */
const SECRET_PARAM_PARTS = /token|secret|passw|signature|credential|api[-_]?key|apikey/i;

/** A URL inside free text: a scheme, `://`, then anything up to white space or a quote or bracket that ends it. */
const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]+/gi;
/** The userinfo of a URL: after `scheme://`, up to the last `@` before the path, query or fragment begins. */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i;
/** One query parameter: its name and value (a value stops before punctuation that ends the sentence around it). */
const QUERY_PARAM = /([?&;])([^=&#;]+)=([^&#;]*?)(?=[.,;:)\]]*(?:[&#]|$))/g;

function isSecretParam(name: string): boolean {
  let decoded = name;
  try {
    decoded = decodeURIComponent(name);
  } catch {
    // A malformed escape: judge the name as written.
  }
  return SECRET_PARAMS.has(decoded.toLowerCase()) || SECRET_PARAM_PARTS.test(decoded);
}

/**
 * One URL with its credentials redacted: `user:password@` becomes `user:***@` (a lone name, often a token, becomes
 * `***@`), and the value of each credential-looking query parameter becomes `***`. Anything else is kept as written.
 */
export function redactUrl(url: string): string {
  const withoutUser = url.replace(USERINFO, (_, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return colon >= 0 ? `${scheme}${userinfo.slice(0, colon)}:${REDACTED}@` : `${scheme}${REDACTED}@`;
  });
  const queryAt = withoutUser.search(/[?]/);
  if (queryAt < 0) return withoutUser;
  const query = withoutUser.slice(queryAt).replace(QUERY_PARAM, (whole, sep: string, name: string) =>
    isSecretParam(name) ? `${sep}${name}=${REDACTED}` : whole,
  );
  return withoutUser.slice(0, queryAt) + query;
}

/** Free text (a message, a log line, a stack trace) with every URL in it redacted (see redactUrl). */
export function redact(text: string): string {
  return text.replace(URL_IN_TEXT, (url) => redactUrl(url));
}

/**
 * Redacts an error on its way out of the process (a CLI's last word, a Lambda's failure, the trainer's exit): its
 * message and stack, and those of every error in its chain of causes, in place. Returns the same error, so its class
 * and name (the retry classification) are kept.
 */
export function redactError<E>(err: E): E {
  const seen = new Set<unknown>();
  for (let link: unknown = err; link instanceof Error && !seen.has(link); link = link.cause) {
    seen.add(link);
    link.message = redact(link.message);
    if (link.stack !== undefined) link.stack = redact(link.stack);
  }
  return err;
}
