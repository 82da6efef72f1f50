/**
 * SentencePiece-style tokenizer of the Universal Sentence Encoder Lite.
 *
 * Ported from TensorFlow.js models (`universal-sentence-encoder/src/tokenizer`, Apache-2.0, Copyright 2019
 * Google LLC), which `@energetic-ai/embeddings` bundles unchanged. We carry our own copy because that
 * package cannot be imported next to `@tensorflow/tfjs`: it loads a second bundled tfjs-core that
 * re-registers every wasm kernel on the shared global engine. A unit test checks ids against the package.
 */

/** One vocabulary entry as shipped in vocab.json: [piece, log-probability score]; seven pieces have null. */
export type VocabEntry = [piece: string, score: number | null];

const SEPARATOR = '\u2581';
// The first six vocabulary entries are <unk>, <s>, </s> and three extra ids: never matched by text.
const RESERVED_SYMBOLS = 6;

interface TrieNode {
  children: Map<string, TrieNode>;
  /** Set when a vocabulary piece ends at this node. */
  piece?: { length: number; score: number; index: number };
}

function newNode(): TrieNode {
  return { children: new Map() };
}

/** Splits by code point, as the original does with `for...of`. */
function chars(text: string): string[] {
  return Array.from(text);
}

/** Tokenizer mapping text to USE-lite vocabulary ids by maximum total piece score. */
export class UseTokenizer {
  private readonly root = newNode();
  private readonly pieceLengths: number[];

  /** Builds the prefix trie over the vocabulary (reserved ids excluded). */
  constructor(vocabulary: readonly VocabEntry[]) {
    this.pieceLengths = vocabulary.map(([piece]) => chars(piece).length);
    for (let index = RESERVED_SYMBOLS; index < vocabulary.length; index++) {
      const [piece, score] = vocabulary[index]!;
      const symbols = chars(piece);
      let node = this.root;
      for (const symbol of symbols) {
        let child = node.children.get(symbol);
        if (!child) {
          child = newNode();
          node.children.set(symbol, child);
        }
        node = child;
      }
      // Upstream adds the raw score, so null counts as 0 (the best score): keep that to produce the same ids.
      node.piece = { length: symbols.length, score: score ?? 0, index };
    }
  }

  /** Returns the vocabulary ids of `text` (empty for empty text); consecutive unknowns collapse to one 0. */
  encode(text: string): number[] {
    const normalized = text.normalize('NFKC');
    const input = normalized.length > 0 ? SEPARATOR + normalized.replace(/ /g, SEPARATOR) : normalized;
    const symbols = chars(input);
    const n = symbols.length;
    // best[end] = best total score of a segmentation of symbols[0, end); 0 doubles as "unset", as upstream.
    const best = new Float64Array(n + 1);
    const word = new Int32Array(n + 1);
    // Candidates per end position, pushed in ascending start order: upstream's visiting order, ties keep the later.
    const candidates: Array<Array<{ length: number; score: number; index: number }>> = Array.from(
      { length: n + 1 },
      () => [],
    );
    for (let start = 0; start < n; start++) {
      let node = this.root.children.get(symbols[start]!);
      let matched = false;
      for (let i = start; i < n && node; i++) {
        if (node.piece) {
          candidates[start + node.piece.length]!.push(node.piece);
          matched = true;
        }
        node = i + 1 < n ? node.children.get(symbols[i + 1]!) : undefined;
      }
      if (!matched) candidates[start + 1]!.push({ length: 1, score: 0, index: 0 });
    }
    for (let end = 0; end <= n; end++) {
      for (const c of candidates[end]!) {
        const score = c.score + best[end - c.length]!;
        if (best[end] === 0 || score >= best[end]!) {
          best[end] = score;
          word[end] = c.index;
        }
      }
    }
    const reversed: number[] = [];
    for (let end = n; end > 0; ) {
      const id = word[end]!;
      reversed.push(id);
      end -= this.pieceLengths[id]!;
    }
    const ids: number[] = [];
    let previousUnknown = false;
    for (const id of reversed) {
      if (!(previousUnknown && id === 0)) ids.push(id);
      previousUnknown = id === 0;
    }
    return ids.reverse();
  }
}
