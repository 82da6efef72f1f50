/** Helpers shared by the `tokenize` and `embed` commands. */
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from 'commander';

/** One text per line (LF or CRLF); a final newline does not add an empty text, blank lines inside do. */
export async function readTextLines(path: string): Promise<string[]> {
  const body = await readFile(path, 'utf8');
  const lines = body.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

/** Commander option parser for a positive integer. */
export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  }
  return n;
}
