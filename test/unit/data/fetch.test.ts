// `data fetch` against a small synthetic aclImdb tarball and SST-2 files served from 127.0.0.1 (no network).
// Expected outputs come from CPython's csv and random modules (test/fixtures/fetch/make-*.py).
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_SOURCES, fetchDatasets, resolveSources, type DatasetSourceOverrides } from '../../../src/data/fetch.js';
import { csvField, imdbRowOrder, parseAclImdbPath } from '../../../src/data/imdb-convert.js';
import { PythonRandom } from '../../../src/data/python-random.js';
import { packTarGz, runCli, startLoopbackServer, type LoopbackServer } from '../../fixtures/fetch/loopback.js';
import pyRandom from '../../fixtures/fetch/python-shuffle.json' with { type: 'json' };
import synthetic from '../../fixtures/fetch/synthetic-aclimdb.json' with { type: 'json' };

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('PythonRandom matches CPython random (fixture from python ' + pyRandom.python + ')', () => {
  it('getrandbits(k) for k = 1..32 from Random(42)', () => {
    const r = new PythonRandom(42);
    expect(pyRandom.getrandbits.map(({ k }) => r.getrandbits(k))).toEqual(pyRandom.getrandbits.map((g) => g.value));
  });

  it('shuffle of range(n) for several seeds and sizes', () => {
    for (const s of pyRandom.shuffles) {
      const x = Array.from({ length: s.n }, (_, i) => i);
      expect(new PythonRandom(s.seed).shuffle(x), `seed ${s.seed} n ${s.n}`).toEqual(s.result);
    }
  });

  it('shuffle of range(12500 / 25000 / 50000), compared by digest', () => {
    for (const s of pyRandom.bigShuffles) {
      const x = new PythonRandom(s.seed).shuffle(Array.from({ length: s.n }, (_, i) => i));
      expect(x.slice(0, 5)).toEqual(s.first);
      expect(sha256(x.join(','))).toBe(s.sha256OfCommaJoined);
    }
  });

  it('rejects seeds it cannot reproduce', () => {
    expect(() => new PythonRandom(-1)).toThrow(/seed must be an integer in \[0, 2\^32\)/);
    expect(() => new PythonRandom(2 ** 32)).toThrow(/seed/);
  });
});

describe('aclImdb conversion rules', () => {
  it('quotes CSV fields only for comma, quote, CR or LF and doubles quotes', () => {
    const f = (s: string) => csvField(Buffer.from(s)).toString();
    expect(f('plain <br /> text\twith tab')).toBe('plain <br /> text\twith tab');
    expect(f('a, b')).toBe('"a, b"');
    expect(f('say "hi"')).toBe('"say ""hi"""');
    expect(f('two\nlines')).toBe('"two\nlines"');
    expect(f('cr\rhere')).toBe('"cr\rhere"');
    expect(f(' café ')).toBe(' café ');
  });

  it('parses labelled review paths and ignores everything else', () => {
    expect(parseAclImdbPath('aclImdb/train/pos/1384_7.txt')).toEqual({
      split: 'train',
      label: 'positive',
      id: 1384,
      rating: 7,
      path: 'aclImdb/train/pos/1384_7.txt',
    });
    expect(parseAclImdbPath('./aclImdb/test/neg/0_2.txt')?.path).toBe('aclImdb/test/neg/0_2.txt');
    for (const other of ['aclImdb/train/unsup/0_0.txt', 'aclImdb/train/labeledBow.feat', 'aclImdb/README', 'aclImdb/test/pos/x_1.txt', 'imdb/train/pos/1_7.txt']) {
      expect(parseAclImdbPath(other), other).toBeNull();
    }
  });

  it('orders a split by (label, numeric id), negative first, then a fresh Random(42) shuffle', () => {
    const reviews = [10, 2, 1].flatMap((id) => (['positive', 'negative'] as const).map((label) => ({ label, id })));
    const sorted = [1, 2, 10].map((id) => ({ label: 'negative', id })).concat([1, 2, 10].map((id) => ({ label: 'positive', id })));
    expect(imdbRowOrder(reviews)).toEqual(new PythonRandom(42).shuffle(sorted));
  });
});

describe('fetchDatasets with loopback sources', () => {
  let server: LoopbackServer;
  let dest: string;
  const expectedCsv = Buffer.from(synthetic.expectedCsv, 'utf8');
  const expectedIndex = Buffer.from(synthetic.expectedIndex, 'utf8');
  const sst2 = synthetic.sst2Upstream as Record<string, string>;
  const syntheticSha: DatasetSourceOverrides['sha256'] = {
    'sst2/train.tsv': sha256(sst2['train.tsv'] + '\n'),
    'sst2/dev.tsv': sha256(sst2['dev.tsv'] + '\n'),
    'sst2/test.tsv': sha256(sst2['test.tsv'] + '\n'),
    'imdb.csv': sha256(expectedCsv),
    'imdb_index.csv': sha256(expectedIndex),
  };
  let sources: DatasetSourceOverrides;

  beforeAll(async () => {
    const members = [
      ...synthetic.directories.map((name) => ({ name })),
      ...Object.entries({ ...synthetic.otherFiles, ...synthetic.reviews }).map(([name, text]) => ({ name, content: Buffer.from(text) })),
    ];
    const files = new Map<string, Buffer>([['/data/sentiment/aclImdb_v1.tar.gz', await packTarGz(members)]]);
    for (const [name, text] of Object.entries(sst2)) files.set(`/raw/SST2/${name}`, Buffer.from(text));
    server = await startLoopbackServer(files);
    sources = {
      sst2BaseUrl: `${server.baseUrl}/raw/SST2`,
      imdbUrl: `${server.baseUrl}/data/sentiment/aclImdb_v1.tar.gz`,
      sha256: syntheticSha,
    };
  });
  afterAll(() => server.close());
  beforeEach(async () => {
    dest = await mkdtemp(join(tmpdir(), 'textshift-fetch-'));
    server.requests.length = 0;
    return () => rm(dest, { recursive: true, force: true });
  });

  it('writes the README formats byte for byte, then skips everything on a re-run', async () => {
    const lines: string[] = [];
    const out = await fetchDatasets({ dest, sources, log: (l) => lines.push(l) });

    expect(gunzipSync(await readFile(join(dest, 'imdb.csv.gz')))).toEqual(expectedCsv);
    expect(gunzipSync(await readFile(join(dest, 'imdb_index.csv.gz')))).toEqual(expectedIndex);
    const csv = synthetic.expectedCsv.split('\n');
    // Spot checks a reader relies on, independent of the fixture generator.
    expect(csv[0]).toBe('review,sentiment');
    expect(csv).toContain('"Meh, ""fine"", I guess.",negative');
    expect(csv).toContain('tab\there and a control \x08 char,negative');
    expect(csv).toContain('Café crème — naïve ★ 日本,positive');
    expect(csv).toContain(' leading and trailing space ,negative');
    expect(synthetic.expectedIndex.split('\n')[1]).toBe('1,train,negative,3,aclImdb/train/neg/20_3.txt,');
    expect(synthetic.expectedIndex.split('\n')[9]).toBe('9,test,positive,10,aclImdb/test/pos/0_10.txt,');
    for (const name of ['train', 'dev', 'test']) {
      expect(await readFile(join(dest, `sst2/${name}.tsv`), 'utf8')).toBe(sst2[`${name}.tsv`] + '\n');
    }
    expect(out.map((o) => [o.file, o.action])).toEqual([
      ['sst2/train.tsv', 'downloaded'],
      ['sst2/dev.tsv', 'downloaded'],
      ['sst2/test.tsv', 'downloaded'],
      ['imdb.csv', 'downloaded'],
      ['imdb_index.csv', 'downloaded'],
    ]);
    expect(out.find((o) => o.file === 'imdb.csv')?.path).toBe(join(dest, 'imdb.csv.gz'));
    // No temp or spill files are left behind.
    expect((await readdir(dest)).sort()).toEqual(['imdb.csv.gz', 'imdb_index.csv.gz', 'sst2']);
    expect((await readdir(join(dest, 'sst2'))).sort()).toEqual(['dev.tsv', 'test.tsv', 'train.tsv']);
    expect(lines).toContain(`sst2/train.tsv: downloaded ${Buffer.byteLength(sst2['train.tsv']!)} bytes from ${sources.sst2BaseUrl}/train.tsv, sha256 ok`);
    const textBytes = Object.values(synthetic.reviews).reduce((n, t) => n + Buffer.byteLength(t), 0);
    const skipped = synthetic.directories.length + Object.keys(synthetic.otherFiles).length;
    expect(lines).toContain(`imdb: read 14 reviews (${textBytes} bytes of text), skipped ${skipped} other entries`);
    expect(lines).toContain('imdb.csv.gz: 14 rows (train 4/4, test 3/3 negative/positive), sha256 ok');

    server.requests.length = 0;
    const again = await fetchDatasets({ dest, sources, log: () => undefined });
    expect(server.requests).toEqual([]);
    expect(again.every((o) => o.action === 'already present')).toBe(true);
  });

  it('re-downloads a file whose content no longer matches', async () => {
    await fetchDatasets({ dest, sources });
    await writeFile(join(dest, 'sst2/dev.tsv'), 'tampered\t1\n');
    await writeFile(join(dest, 'imdb_index.csv.gz'), 'not gzip');
    server.requests.length = 0;
    const out = await fetchDatasets({ dest, sources });
    expect(server.requests).toEqual(['/raw/SST2/dev.tsv', '/data/sentiment/aclImdb_v1.tar.gz']);
    expect(out.filter((o) => o.action === 'downloaded').map((o) => o.file)).toEqual(['sst2/dev.tsv', 'imdb.csv', 'imdb_index.csv']);
    expect(gunzipSync(await readFile(join(dest, 'imdb_index.csv.gz')))).toEqual(expectedIndex);
  });

  it('fails on a wrong SST-2 checksum naming the URL, expected and actual sha256, and writes nothing', async () => {
    const wrong = { ...sources, sha256: { ...syntheticSha, 'sst2/train.tsv': DEFAULT_SOURCES.sha256['sst2/train.tsv'] } };
    const actual = syntheticSha!['sst2/train.tsv']!;
    await expect(fetchDatasets({ dest, sources: wrong })).rejects.toThrow(
      `sst2/train.tsv from ${sources.sst2BaseUrl}/train.tsv has the wrong sha256: expected ${DEFAULT_SOURCES.sha256['sst2/train.tsv']}, got ${actual}.`,
    );
    expect(await readdir(join(dest, 'sst2'))).toEqual([]);
  });

  it('fails on a wrong imdb.csv checksum naming the URL, expected and actual sha256, and leaves no file', async () => {
    const wrong = { ...sources, sha256: { ...syntheticSha, 'imdb.csv': DEFAULT_SOURCES.sha256['imdb.csv'] } };
    await expect(fetchDatasets({ dest, sources: wrong })).rejects.toThrow(
      `imdb.csv from ${sources.imdbUrl} has the wrong sha256: expected ${DEFAULT_SOURCES.sha256['imdb.csv']}, got ${sha256(expectedCsv)}.`,
    );
    expect((await readdir(dest)).sort()).toEqual(['sst2']);
  });

  it('names the URL and HTTP status when a source is missing', async () => {
    const missing = `${server.baseUrl}/nowhere/aclImdb_v1.tar.gz`;
    await expect(fetchDatasets({ dest, sources: { ...sources, imdbUrl: missing } })).rejects.toThrow(
      `GET ${missing} failed: HTTP 404 Not Found`,
    );
  });

  it('names the URL when the archive is truncated, and leaves no partial output', async () => {
    const tgz = server.files.get('/data/sentiment/aclImdb_v1.tar.gz')!;
    server.files.set('/truncated.tar.gz', tgz.subarray(0, tgz.length - 200));
    const url = `${server.baseUrl}/truncated.tar.gz`;
    await expect(fetchDatasets({ dest, sources: { ...sources, imdbUrl: url } })).rejects.toThrow(`${url}: unexpected end of file`);
    expect((await readdir(dest)).sort()).toEqual(['sst2']);
  });

  it('rejects an archive without aclImdb reviews', async () => {
    server.files.set('/empty.tar.gz', await packTarGz([{ name: 'other/readme.txt', content: Buffer.from('hi') }]));
    const url = `${server.baseUrl}/empty.tar.gz`;
    await expect(fetchDatasets({ dest, sources: { ...sources, imdbUrl: url } })).rejects.toThrow(
      `${url}: no aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt entries found`,
    );
  });

  it('accepts file: URLs for an archive downloaded by hand', async () => {
    const local = join(dest, 'aclImdb_v1.tar.gz');
    await writeFile(local, server.files.get('/data/sentiment/aclImdb_v1.tar.gz')!);
    await fetchDatasets({ dest, sources: { ...sources, imdbUrl: pathToFileURL(local).href } });
    expect(server.requests.filter((p) => p.endsWith('.tar.gz'))).toEqual([]);
    expect(gunzipSync(await readFile(join(dest, 'imdb.csv.gz')))).toEqual(expectedCsv);
  });

  it('takes source URLs from explicit options, then TEXTSHIFT_* env vars, then the public defaults', () => {
    const env = { TEXTSHIFT_SST2_BASE_URL: 'http://mirror/sst2/', TEXTSHIFT_IMDB_URL: 'http://mirror/imdb.tgz' };
    expect(resolveSources({}, {})).toEqual(DEFAULT_SOURCES);
    expect(resolveSources({}, env)).toMatchObject({ sst2BaseUrl: 'http://mirror/sst2/', imdbUrl: 'http://mirror/imdb.tgz' });
    expect(resolveSources({ imdbUrl: 'file:///x.tgz' }, env)).toMatchObject({ sst2BaseUrl: 'http://mirror/sst2/', imdbUrl: 'file:///x.tgz' });
    expect(resolveSources({ sha256: { 'imdb.csv': 'abc' } }, {}).sha256).toEqual({ ...DEFAULT_SOURCES.sha256, 'imdb.csv': 'abc' });
    expect(DEFAULT_SOURCES.sst2BaseUrl).toBe(
      'https://raw.githubusercontent.com/clairett/pytorch-sentiment-classification/457ffd83de90a9d6d472d8ffc31bbffe40a8b236/data/SST2/',
    );
  });

  it('CLI `textshift data fetch --dest` reads the env URLs and reports a checksum failure with exit code 1', async () => {
    // The CLI always checks against the README hashes, which the synthetic SST-2 file cannot match.
    const run = await runCli(['data', 'fetch', '--dest', dest], {
      TEXTSHIFT_SST2_BASE_URL: sources.sst2BaseUrl!,
      TEXTSHIFT_IMDB_URL: sources.imdbUrl!,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `textshift data fetch: sst2/train.tsv from ${sources.sst2BaseUrl}/train.tsv has the wrong sha256: ` +
        `expected ${DEFAULT_SOURCES.sha256['sst2/train.tsv']}, got ${syntheticSha!['sst2/train.tsv']}.`,
    );
    expect(server.requests).toEqual(['/raw/SST2/train.tsv']);
  });
});
