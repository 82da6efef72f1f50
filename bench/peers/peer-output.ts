/**
 * The one line every peer (and textshift's bench child) ends with: `{"results": {...}, "timings": {...}}`, as the
 * scripts in `../shared/peers/` print it. Parsed here so every system's numbers come from its own output.
 */
import { z } from 'zod';

const finalLine = z.object({ results: z.record(z.string(), z.unknown()), timings: z.record(z.string(), z.number()) });

/** A peer's final JSON line. */
export type PeerOutput = z.infer<typeof finalLine>;

/** Test accuracy per model as [SST-2 test, IMDB test], the order the peers print. */
const bowResults = z.object({ bow_1: z.tuple([z.number(), z.number()]), bow_2: z.tuple([z.number(), z.number()]) });

/** One corpus of the encoder comparison: texts encoded and the seconds they took (tokenization included, load excluded). */
const encoderCorpus = z.object({ texts: z.number().int().positive(), seconds: z.number().positive(), tokens: z.number().int().nonnegative() });

/** What an encoder system measured per corpus. */
export type EncoderCorpusResult = z.infer<typeof encoderCorpus>;

/** Returns the last line of `stdout` that is a `{"results": …, "timings": …}` object; `source` names the system in errors. */
export function parsePeerOutput(stdout: string, source: string): PeerOutput {
  const lines = stdout.split('\n').map((l) => l.trim());
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (!line.startsWith('{')) continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      continue;
    }
    const parsed = finalLine.safeParse(json);
    if (parsed.success) return parsed.data;
  }
  throw new Error(`${source}: its output has no final {"results": ..., "timings": ...} JSON line`);
}

/** bow_1's SST-2 test accuracy and bow_2's IMDB test accuracy (the two the seed's table compares). */
export function bowAccuracies(output: PeerOutput, source: string): { bow1Sst2: number; bow2Imdb: number } {
  const parsed = bowResults.safeParse(output.results);
  if (!parsed.success) throw new Error(`${source}: results are not {"bow_1": [sst2, imdb], "bow_2": [sst2, imdb]}: ${JSON.stringify(output.results)}`);
  return { bow1Sst2: parsed.data.bow_1[0], bow2Imdb: parsed.data.bow_2[1] };
}

/** The encoder result of one corpus (`sst2`, `imdb`) from an encoder system's output. */
export function encoderResult(output: PeerOutput, corpus: string, source: string): EncoderCorpusResult {
  const parsed = encoderCorpus.safeParse(output.results[corpus]);
  if (!parsed.success) throw new Error(`${source}: results.${corpus} is not {"texts", "seconds", "tokens"}: ${JSON.stringify(output.results[corpus])}`);
  return parsed.data;
}
