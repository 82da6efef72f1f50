import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { EXPERIMENT_NAME_CHARACTERS, experimentKey, featureCacheKey, isShardOf, parseShardKey, PREFIXES, runKeys, shardResultKey } from '../../../src/run/keys.js';
import { parseMarkFailedInput, parsePrepareInput } from '../../../functions/shared/events.js';

describe('run keys', () => {
  it('builds the documented layout under runs/<runId>/', () => {
    const k = runKeys('sst2-imdb-abc');
    expect(k.manifest).toBe('runs/sst2-imdb-abc/manifest.json');
    expect(k.split('imdb', 'test')).toBe('runs/sst2-imdb-abc/splits/imdb/test.jsonl.gz');
    expect(k.best('bow_1')).toBe('runs/sst2-imdb-abc/models/bow_1/best');
    expect(k.report('cost.json')).toBe('runs/sst2-imdb-abc/report/cost.json');
    expect(k.lock).toBe('runs/sst2-imdb-abc/lock.json');
    expect(featureCacheKey('ab12', 'csr')).toBe('cache/features/ab12.csr');
    expect(Object.values(PREFIXES).every((p) => p.endsWith('/'))).toBe(true);
  });

  it('reads a shard key back into the parts it was built from', () => {
    const key = runKeys('r1').shard('bow', 'imdb', 'train', 7);
    expect(key).toBe('runs/r1/shards/bow/imdb/train/00007.json');
    expect(parseShardKey(key)).toEqual({ runId: 'r1', feature: 'bow', dataset: 'imdb', part: 'train', index: 7 });
    expect(shardResultKey(key)).toBe('runs/r1/featurized/bow/imdb/train/00007.json');
  });

  it('tells a shard of this run from anything else', () => {
    const key = runKeys('r1').shard('use', 'sst2', 'val', 0);
    expect(isShardOf(key, 'r1')).toBe(true);
    expect(isShardOf(key, 'r2')).toBe(false);
    expect(isShardOf('runs/r1/shards/../manifest.json', 'r1')).toBe(false);
    expect(isShardOf('runs/r1/manifest.json', 'r1')).toBe(false);
    expect(parseShardKey('runs/r1/shards/bow/imdb/train/x.json')).toBeUndefined();
  });

  it('accepts an experiment file name only when its key and the run id made of it are ones Prepare and MarkFailed accept', () => {
    const md5 = (t: string) => createHash('md5').update(t).digest('hex');
    const candidates = [...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)), 'é', 'ß', '中', '\u00a0', '\u202e', '🚀'];
    const accepted: string[] = [];
    for (const c of candidates) {
      const file = `exp${c}1.json`;
      let key: string;
      try {
        key = experimentKey(file);
      } catch (err) {
        expect((err as Error).message, file).toBe(
          `experiment file "${file}": an experiment file name may only use letters, digits and . _ - (got ${JSON.stringify(c)}), since the run and every key it writes are named after it; rename the file`,
        );
        continue;
      }
      accepted.push(c);
      // An upload's key may arrive URL-encoded: an accepted name is the same key either way.
      expect(encodeURIComponent(file)).toBe(file);
      // The run id the state machine's intake derives on AWS: <file name up to its first dot>-md5(<key>#<upload id>).
      const runId = `${file.split('.')[0]}-${md5(`${key}#v1`)}`;
      const execution = `arn:aws:states:eu-west-1:123456789012:execution:textshift-run:${runId}`;
      expect(parsePrepareInput({ prepareInput: { experimentKey: key, uploadId: 'v1', experimentVersion: 'v1', runId }, execution }), file).toMatchObject({ runId });
      expect(parseMarkFailedInput({ runId, stage: 'Prepare', error: { Error: 'ConfigError' }, execution }), file).toMatchObject({ runId });
    }
    expect(accepted.join('')).toBe([...EXPERIMENT_NAME_CHARACTERS].sort().join(''));
    expect(() => experimentKey('..')).toThrow('experiment file "..": an experiment file name may only use letters, digits and . _ -, since');
  });
});
