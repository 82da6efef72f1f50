import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import bundledPrices from './prices/aws-prices.json' with { type: 'json' };
import { ConfigError } from '../errors/index.js';

/** Units a price can be quoted in, and how many base units (request, GB-second, ...) one of them holds. */
export const PRICE_UNITS = {
  'GB-second': { base: 'GB-second', per: 1 },
  request: { base: 'request', per: 1 },
  '1K requests': { base: 'request', per: 1_000 },
  '1M requests': { base: 'request', per: 1_000_000 },
  'state transition': { base: 'state transition', per: 1 },
  '1K state transitions': { base: 'state transition', per: 1_000 },
  'instance-second': { base: 'instance-second', per: 1 },
  'instance-hour': { base: 'instance-second', per: 3_600 },
  'GB-month': { base: 'GB-month', per: 1 },
} as const;

export type PriceUnit = keyof typeof PRICE_UNITS;
export type BaseUnit = (typeof PRICE_UNITS)[PriceUnit]['base'];

const PriceEntrySpec = z.strictObject({
  price: z.number().nonnegative(),
  unit: z.enum(Object.keys(PRICE_UNITS) as [PriceUnit, ...PriceUnit[]]),
  region: z.string().min(1),
  date: z.iso.date(),
  currency: z.string().regex(/^[A-Z]{3}$/, 'expected an ISO 4217 code such as "USD"'),
  source: z.url(),
  note: z.string().optional(),
});

const PriceFileSpec = z.strictObject({
  $comment: z.string().optional(),
  version: z.string().min(1),
  prices: z.record(z.string().regex(/^[a-z0-9][a-z0-9.-]*$/, 'expected a key such as "lambda.requests"'), PriceEntrySpec),
});

export type PriceEntry = z.infer<typeof PriceEntrySpec>;

/** A price table: where each price came from, and the files it was assembled from. */
export interface PriceTable {
  /** Version of every file merged, bundled first (e.g. ["2025-06-01.1", "my-quote-3"]). */
  versions: string[];
  prices: Record<string, PriceEntry>;
}

/** Parses and validates a price file (JSON text); `source` names the file in errors. */
export function parsePriceFile(text: string, source: string): PriceTable {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${source}: price file is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = PriceFileSpec.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  - ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
    throw new ConfigError(`${source}: invalid price file\n${problems.join('\n')}`);
  }
  return { versions: [parsed.data.version], prices: parsed.data.prices };
}

/** The prices shipped with textshift (`src/cost/prices/aws-prices.json`). */
export function bundledPriceTable(): PriceTable {
  return parsePriceFile(JSON.stringify(bundledPrices), 'src/cost/prices/aws-prices.json');
}

/** Overrides `base` with every entry of `override` (whole entries replace entries by key). */
export function mergePrices(base: PriceTable, override: PriceTable): PriceTable {
  return { versions: [...base.versions, ...override.versions], prices: { ...base.prices, ...override.prices } };
}

/** The bundled prices, overridden by the user's price file when a path is given. */
export async function loadPrices(overridePath?: string): Promise<PriceTable> {
  const base = bundledPriceTable();
  if (overridePath === undefined) return base;
  let text: string;
  try {
    text = await readFile(overridePath, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read price file ${overridePath}: ${(err as Error).message}`);
  }
  return mergePrices(base, parsePriceFile(text, overridePath));
}

/** The entry for `key`, checked to be quoted in a unit of `base`; throws naming the key otherwise. */
export function priceFor(table: PriceTable, key: string, base: BaseUnit): PriceEntry {
  const entry = table.prices[key];
  if (entry === undefined) {
    throw new ConfigError(`no price "${key}" in price table ${table.versions.join(' + ')}; add it to a price file (--prices)`);
  }
  if (PRICE_UNITS[entry.unit].base !== base) {
    throw new ConfigError(`price "${key}" is quoted per ${entry.unit}; expected a unit of ${base}`);
  }
  return entry;
}
