import { describe, expect, it } from 'vitest';
import { memoized, type StageContext } from '../../../src/workflow/context.js';
import { FsBlobStore } from '../../../src/store/fs-store.js';
import { silentReporter } from '../../../src/run/reporter.js';

const context = (memo?: Map<string, unknown>): StageContext => {
  const store = new FsBlobStore('unused');
  return { store, data: store, reporter: silentReporter, memo };
};

describe('memoized', () => {
  it('computes once per key and shares the value, including with callers that asked while it was pending', async () => {
    const ctx = context(new Map());
    let calls = 0;
    const make = async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 5));
      return { value: calls };
    };
    const [a, b] = await Promise.all([memoized(ctx, 'k', make), memoized(ctx, 'k', make)]);
    expect(a).toBe(b);
    expect(await memoized(ctx, 'k', make)).toBe(a);
    expect(calls).toBe(1);
  });

  it('a call whose computation fails is not remembered: the next call computes again and succeeds', async () => {
    const ctx = context(new Map());
    let calls = 0;
    const make = async () => {
      calls++;
      if (calls === 1) throw new Error('model not uploaded yet');
      return 'loaded';
    };
    // Both callers waiting on the failing computation see its error.
    const waiting = await Promise.allSettled([memoized(ctx, 'encoder', make), memoized(ctx, 'encoder', make)]);
    expect(waiting.map((r) => r.status === 'rejected' && (r.reason as Error).message)).toEqual(['model not uploaded yet', 'model not uploaded yet']);
    expect(ctx.memo!.has('encoder')).toBe(false);

    expect(await memoized(ctx, 'encoder', make)).toBe('loaded');
    expect(await memoized(ctx, 'encoder', make)).toBe('loaded');
    expect(calls).toBe(2);
  });

  it('a computation that throws before its first await is not remembered either', async () => {
    const ctx = context(new Map());
    let calls = 0;
    const make = (): Promise<number> => {
      calls++;
      if (calls === 1) throw new Error('synchronous failure');
      return Promise.resolve(calls);
    };
    await expect(memoized(ctx, 'k', make)).rejects.toThrow('synchronous failure');
    expect(await memoized(ctx, 'k', make)).toBe(2);
  });

  it('without a memo, computes on every call', async () => {
    const ctx = context();
    let calls = 0;
    await memoized(ctx, 'k', async () => ++calls);
    expect(await memoized(ctx, 'k', async () => ++calls)).toBe(2);
  });
});
