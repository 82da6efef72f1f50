/** `textshift tokenize`: BERT token ids of each line of a text file, as the encoder would see them. */
import type { Command } from 'commander';
import { DEFAULT_MAX_LENGTH, loadBertTokenizer } from '../features/bert/tokenizer.js';
import { positiveInteger, readTextLines } from './text-lines.js';
import { redact } from '../errors/redact.js';

/** Registers `tokenize <model-dir> <texts.txt> [--max-length N]`. */
export function registerTokenizeCommand(program: Command): void {
  program
    .command('tokenize')
    .description(
      'Print the BERT token ids ([CLS] … [SEP]) of each line of <texts.txt> as one JSON array per line, using the ' +
        'tokenizer.json or vocab.txt of <model-dir>.',
    )
    .argument('<model-dir>', 'Hugging Face model folder (tokenizer.json or vocab.txt)')
    .argument('<texts.txt>', 'UTF-8 text file, one text per line')
    .option('--max-length <n>', 'truncate to n tokens, [CLS] and [SEP] included', positiveInteger, DEFAULT_MAX_LENGTH)
    .action(async (modelDir: string, textsPath: string, opts: { maxLength: number }) => {
      try {
        const tokenizer = await loadBertTokenizer(modelDir);
        const texts = await readTextLines(textsPath);
        const out = texts.map((t) => JSON.stringify(tokenizer.encode(t, opts.maxLength))).join('\n');
        if (out) process.stdout.write(`${out}\n`);
      } catch (err) {
        console.error(`textshift tokenize: ${redact((err as Error).message)}`);
        process.exitCode = 1;
      }
    });
}
