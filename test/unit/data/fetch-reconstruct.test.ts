// Faithful reconstruction: rebuild the real aclImdb train/test tree (50,000 reviews) from the data folder, serve
// it as aclImdb_v1.tar.gz from 127.0.0.1 together with the upstream-style SST-2 files (no final newline),
// run the real CLI `textshift data fetch` on it and require the README's sha256s. No network is used.
import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SOURCES } from '../../../src/data/fetch.js';
import { packTarGz, runCli, startLoopbackServer, type LoopbackServer, type TarMember } from '../../fixtures/fetch/loopback.js';
import { dataRoot } from '../../support/data.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const elapsed = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

describe('data fetch on the real data rebuilt from the data folder', () => {
  let server: LoopbackServer;
  let dest: string;
  let dataDir: string;
  let dataIndex: string[][];

  beforeAll(async () => {
    dataDir = dataRoot();
    let t0 = performance.now();
    const csv: string[][] = parse(gunzipSync(await readFile(join(dataDir, 'imdb.csv.gz'))), { bom: false });
    dataIndex = parse(gunzipSync(await readFile(join(dataDir, 'imdb_index.csv.gz'))));
    expect(csv).toHaveLength(50_001);
    expect(dataIndex).toHaveLength(50_001);
    console.log(`parsed imdb.csv + index from ${dataDir}: ${elapsed(t0)}`);

    t0 = performance.now();
    // Archive order is csv row order (shuffled), so the converter cannot lean on sorted input; the extra
    // members are the kinds of aclImdb_v1.tar.gz entries that must be skipped.
    const members: TarMember[] = [
      { name: 'aclImdb/' },
      { name: 'aclImdb/README', content: Buffer.from('Large Movie Review Dataset v1.0\n') },
      { name: 'aclImdb/imdb.vocab', content: Buffer.from('the\nand\na\n') },
      { name: 'aclImdb/train/' },
      { name: 'aclImdb/train/unsupBow.feat', content: Buffer.from('0 0:8 1:6\n') },
      { name: 'aclImdb/train/urls_unsup.txt', content: Buffer.from('http://www.imdb.com/title/tt0018515/usercomments\n') },
      { name: 'aclImdb/train/unsup/' },
      { name: 'aclImdb/train/unsup/0_0.txt', content: Buffer.from('An unlabelled review, which must be skipped.') },
    ];
    const disagreeing: number[] = [];
    for (let row = 1; row < csv.length; row++) {
      const [review, sentiment] = csv[row]!;
      const [, , indexSentiment, , path] = dataIndex[row]!;
      if (indexSentiment !== sentiment) disagreeing.push(row);
      members.push({ name: path!, content: Buffer.from(review!, 'utf8') });
    }
    expect(disagreeing, 'rows whose index sentiment differs from imdb.csv').toEqual([]);
    const tgz = await packTarGz(members);
    console.log(`packed aclImdb tar.gz (${members.length} members, ${(tgz.length / 2 ** 20).toFixed(1)} MiB): ${elapsed(t0)}`);

    const files = new Map([['/aclImdb_v1.tar.gz', tgz]]);
    for (const split of ['train', 'dev', 'test']) {
      const tsv = await readFile(join(dataDir, `sst2/${split}.tsv`));
      expect(tsv.at(-1)).toBe(0x0a);
      files.set(`/SST2/${split}.tsv`, tsv.subarray(0, -1));
    }
    server = await startLoopbackServer(files);
    dest = await mkdtemp(join(tmpdir(), 'textshift-fetch-real-'));
  }, 180_000);
  afterAll(async () => {
    await server?.close();
    if (dest) await rm(dest, { recursive: true, force: true });
  });

  it('CLI output matches the README sha256s; a second run downloads nothing', async () => {
    const env = { TEXTSHIFT_SST2_BASE_URL: `${server.baseUrl}/SST2/`, TEXTSHIFT_IMDB_URL: `${server.baseUrl}/aclImdb_v1.tar.gz` };
    let t0 = performance.now();
    const run = await runCli(['data', 'fetch', '--dest', dest], env);
    console.log(`textshift data fetch (50,000 reviews): ${elapsed(t0)}\n${run.stderr}`);
    expect(run.stderr).not.toContain('textshift data fetch:');
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('imdb: read 50,000 reviews');
    expect(run.stderr).toContain('skipped 8 other entries');
    expect(run.stderr).toContain('imdb.csv.gz: 50,000 rows (train 12500/12500, test 12500/12500 negative/positive), sha256 ok');

    // Independent of the command's own check: hash what landed on disk.
    const imdbCsv = gunzipSync(await readFile(join(dest, 'imdb.csv.gz')));
    expect(imdbCsv.length).toBe(66_212_309);
    expect(sha256(imdbCsv)).toBe('5e712009645cd5c83dd5e6ec08c345b694d1b306954e82a458648871e56c5d2a');
    for (const [split, hash] of [
      ['train', '4bdc38ba1cf151a802f72b0ba750d22404ad7103b6597b8c39b875a9f28f0b9c'],
      ['dev', '5a6e516ec8c2ece1c86fe5c2877de566d35cd4b364395382a790c222cfd49915'],
      ['test', 'c204bc7652500e47fab2711fbebdf87f7491ec6aad8a2b806346f7d53f4634e0'],
    ] as const) {
      expect(sha256(await readFile(join(dest, `sst2/${split}.tsv`))), split).toBe(hash);
    }
    // The index equals the data folder's except for the dax44_AMLM_path column, which fetch leaves empty.
    const index = gunzipSync(await readFile(join(dest, 'imdb_index.csv.gz')));
    expect(sha256(index)).toBe(DEFAULT_SOURCES.sha256['imdb_index.csv']);
    const rows: string[][] = parse(index);
    expect(rows[0]).toEqual(dataIndex[0]);
    expect(rows.slice(1)).toEqual(dataIndex.slice(1).map((r) => [...r.slice(0, 5), '']));

    // A copy of the data folder (whose index may have the dax44 column) counts as present too: nothing is downloaded.
    await copyFile(join(dataDir, 'imdb_index.csv.gz'), join(dest, 'imdb_index.csv.gz'));
    server.requests.length = 0;
    t0 = performance.now();
    const again = await runCli(['data', 'fetch', '--dest', dest], env);
    console.log(`re-run with everything present: ${elapsed(t0)}`);
    expect(again.code).toBe(0);
    expect(server.requests).toEqual([]);
    expect(again.stdout.split('\n').filter((l) => l.startsWith('already present'))).toHaveLength(5);
  }, 300_000);
});
