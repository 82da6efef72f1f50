import { describe, expect, it } from 'vitest';
import { bowAccuracies, encoderResult, parsePeerOutput } from '../../../../bench/peers/peer-output.js';
import { descendants, parseProcStat, runMeasured, statusKb, TreePeak } from '../../../../bench/peers/measure.js';
import { groupRows, minMedian, peerTable, speedup, type SystemRuns } from '../../../../bench/peers/table.js';
import { envStamp } from '../../../../bench/peers/python-env.js';
import { findStoreModel, maxAbsDiff, parsePeersArgs } from '../../../../bench/peers/peers.js';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The --peers plumbing only: its numbers belong to `npm run bench -- --peers`, never to a test.
describe('peer output', () => {
  const final = '{"results": {"bow_1": [0.8012, 0.7633], "bow_2": [0.7963, 0.8826]}, "timings": {"total_s": 393.1}}';

  it('takes the last results line, after epoch lines and other JSON', () => {
    const out = `(5536, 2) (1384, 2)\nbow_1 epoch 1 loss 0.69 val_acc 0.5\n{"progress": 1}\n${final}\n\n`;
    const parsed = parsePeerOutput(out, 'seed');
    expect(parsed.timings.total_s).toBe(393.1);
    expect(bowAccuracies(parsed, 'seed')).toEqual({ bow1Sst2: 0.8012, bow2Imdb: 0.8826 });
  });

  it('names the system whose output has no results line or the wrong shape', () => {
    expect(() => parsePeerOutput('bow_1 epoch 1\n{"results": 1}\n', 'torch-bag')).toThrow(/torch-bag: its output has no final/);
    const odd = parsePeerOutput('{"results": {"bow_1": [1]}, "timings": {}}', 'x');
    expect(() => bowAccuracies(odd, 'x')).toThrow(/x: results are not/);
  });

  it('reads an encoder corpus', () => {
    const out = parsePeerOutput('{"results": {"sst2": {"texts": 10, "seconds": 0.5, "tokens": 200}}, "timings": {"load_s": 1}}', 'enc');
    expect(encoderResult(out, 'sst2', 'enc')).toEqual({ texts: 10, seconds: 0.5, tokens: 200 });
    expect(() => encoderResult(out, 'imdb', 'enc')).toThrow(/enc: results.imdb/);
  });
});

describe('process-tree RSS', () => {
  it('parses /proc/<pid>/stat even when the command name holds spaces and parentheses', () => {
    expect(parseProcStat('4242 (tsx (child) x) S 4200 4242 1 0 -1')).toEqual({ pid: 4242, ppid: 4200 });
  });

  it('reads kB fields of /proc/<pid>/status, 0 when absent', () => {
    const status = 'Name:\tnode\nVmHWM:\t  553212 kB\nVmRSS:\t  401000 kB\n';
    expect(statusKb(status, 'VmHWM')).toBe(553212);
    expect(statusKb(status, 'VmRSS')).toBe(401000);
    expect(statusKb('Name:\tkworker\n', 'VmRSS')).toBe(0);
  });

  it('finds every descendant of the root and nothing else', () => {
    const parentOf = new Map([[10, 1], [11, 10], [12, 11], [13, 10], [20, 1], [21, 20]]);
    expect([...descendants(10, parentOf)].sort()).toEqual([10, 11, 12, 13]);
  });

  it('measures a grandchild that holds 200 MB, and the stdout of the child', async () => {
    // The child spawns a process that fills 200 MB and keeps it for half a second: the tree's peak must include it.
    const grandchild = 'const b = Buffer.alloc(200 * 2 ** 20, 1); setTimeout(() => console.log(b[0]), 500)';
    const script = `require('child_process').spawnSync(process.execPath, ['-e', ${JSON.stringify(grandchild)}], { stdio: 'inherit' }); console.log('{"results": {}, "timings": {}}')`;
    const r = await runMeasured(process.execPath, ['-e', script], { cwd: tmpdir(), env: process.env });
    expect(r.peakRssMb).toBeGreaterThan(200);
    expect(r.stdout).toContain('"results"');
    await expect(runMeasured(process.execPath, ['-e', 'process.exit(3)'], { cwd: tmpdir(), env: process.env })).rejects.toThrow(/exited 3/);
  });

  it('keeps the largest of the summed tree, any one process peak and the kernel max RSS', () => {
    const peak = new TreePeak();
    peak.add([{ rssKb: 300 * 1024, hwmKb: 310 * 1024 }, { rssKb: 200 * 1024, hwmKb: 200 * 1024 }]);
    peak.add([{ rssKb: 100 * 1024, hwmKb: 450 * 1024 }]);
    expect(peak.peakMb()).toBe(500);
    expect(peak.peakMb(600 * 1024)).toBe(600);
  });
});

describe('the table', () => {
  const runs = (group: string, system: string, seconds: number[], reference = false): SystemRuns => ({
    group,
    system,
    reference,
    seconds,
    peakRssMb: seconds.map(() => 500),
  });

  it('takes min and median', () => {
    expect(minMedian([3, 1, 2])).toEqual({ min: 1, median: 2 });
    expect(minMedian([4, 1, 3, 2])).toEqual({ min: 1, median: 2.5 });
  });

  it('gives each peer its ratio to the textshift row of its own group, by median', () => {
    const rows = [runs('bow', 'peer', [100, 120, 300]), runs('bow', 'textshift', [40, 60], true), runs('enc', 'peer', [9])];
    expect(speedup(rows[0]!, rows)).toBe(2.4);
    expect(speedup(rows[1]!, rows)).toBeUndefined();
    expect(speedup(rows[2]!, rows)).toBeUndefined();
    expect(groupRows(rows).map((r) => r.system)).toEqual(['textshift', 'peer', 'peer']);
  });

  it('prints accuracies, throughput, ratios and footnotes', () => {
    const bow = { ...runs('bow', 'torch_bag.py', [100, 110]), bow1Sst2: [0.8, 0.81], bow2Imdb: [0.885, 0.885] };
    const ts = { ...runs('bow', 'textshift', [50, 50], true), bow1Sst2: [0.7963, 0.7963], bow2Imdb: [0.8867, 0.8867] };
    const enc = { ...runs('encoder', 'textshift', [2], true), texts: 500 };
    const table = peerTable([bow, ts, enc], ['load 1.5']);
    expect(table).toMatch(/textshift\s+2\s+50\.00\s+50\.00\s+500\s+0\.7963\s+0\.8867/);
    expect(table).toMatch(/torch_bag\.py\s+2\s+100\.00\s+105\.00\s+500\s+0\.8000-0\.8100\s+0\.8850\s+2\.10×/);
    expect(table).toMatch(/encoder\s+textshift\s+1\s+2\.00\s+2\.00\s+500\s+250\.0/);
    expect(table.trimEnd().split('\n').at(-1)).toBe('load 1.5');
  });
});

describe('options and helpers', () => {
  it('parses --peers options with defaults and rejects unknown systems', () => {
    const o = parsePeersArgs(['--peers', '--only', 'textshift,torch-bag-sparse', '--repeat', '3', '--hf-model', 'ckpt']);
    expect(o).toMatchObject({ only: ['textshift', 'torch-bag-sparse'], repeat: 3, threads: 2, sst2Texts: 2000, imdbTexts: 300, maxLength: 256, hfModel: 'ckpt' });
    expect(parsePeersArgs([]).hfModel).toBeUndefined();
    expect(() => parsePeersArgs(['--only', 'pytorch'])).toThrow(/unknown system\(s\) pytorch/);
    expect(() => parsePeersArgs(['--repeat', '0'])).toThrow(/--repeat must be a positive integer/);
  });

  it('stamps a venv by its pins and interpreter', () => {
    expect(envStamp('torch==2.15.0\n', '3.11.7')).toBe(envStamp('torch==2.15.0\n', '3.11.7\n'));
    expect(envStamp('torch==2.15.0\n', '3.11.7')).not.toBe(envStamp('torch==2.15.1\n', '3.11.7'));
    expect(envStamp('torch==2.15.0\n', '3.11.7')).not.toBe(envStamp('torch==2.15.0\n', '3.12.1'));
  });

  it('compares embeddings', () => {
    expect(maxAbsDiff(Float32Array.of(1, 2, 3), Float32Array.of(1, 2.5, 2))).toBe(1);
    expect(() => maxAbsDiff(Float32Array.of(1), Float32Array.of(1, 2))).toThrow(/1 and 2 values/);
  });

  it('finds a BERT-family ONNX folder in the store', () => {
    const store = mkdtempSync(join(tmpdir(), 'peers-store-'));
    try {
      expect(findStoreModel(store)).toBeUndefined();
      mkdirSync(join(store, 'models', 'a-use', 'onnx'), { recursive: true });
      writeFileSync(join(store, 'models', 'a-use', 'config.json'), '{"model_type": "use"}');
      writeFileSync(join(store, 'models', 'a-use', 'onnx', 'model.onnx'), '');
      mkdirSync(join(store, 'models', 'minilm', 'onnx'), { recursive: true });
      writeFileSync(join(store, 'models', 'minilm', 'config.json'), '{"model_type": "bert"}');
      expect(findStoreModel(store)).toBeUndefined();
      writeFileSync(join(store, 'models', 'minilm', 'onnx', 'model.onnx'), '');
      expect(findStoreModel(store)).toBe(join(store, 'models', 'minilm'));
    } finally {
      rmSync(store, { recursive: true, force: true });
    }
  });
});
