/** `textshift embed`: sentence embeddings of each line of a text file, written as a float32 .npy matrix. */
import { Option, type Command } from 'commander';
import { BertEncoder, DEFAULT_BATCH_SIZE, DEFAULT_THREADS } from '../features/bert/encoder.js';
import { POOLINGS, type Pooling } from '../features/bert/pooling.js';
import { writeNpyFile } from '../matrix/npy.js';
import { positiveInteger, readTextLines } from './text-lines.js';
import { redact } from '../errors/redact.js';

interface EmbedOptions {
  pooling: Pooling;
  maxLength?: number;
  batchSize: number;
  threads: number;
  out: string;
}

/** Registers `embed <model-dir> <texts.txt> --pooling P --out file.npy`. */
export function registerEmbedCommand(program: Command): void {
  program
    .command('embed')
    .description(
      'Embed each line of <texts.txt> with the BERT ONNX model in <model-dir> (onnx/model.onnx, config.json, ' +
        'tokenizer) and write one float32 row per line to a NumPy .npy file.',
    )
    .argument('<model-dir>', 'Hugging Face optimum feature-extraction folder')
    .argument('<texts.txt>', 'UTF-8 text file, one text per line')
    .addOption(new Option('--pooling <mode>', 'sentence pooling over real tokens').choices(POOLINGS).makeOptionMandatory())
    .option('--max-length <n>', 'truncate to n tokens, [CLS] and [SEP] included (default 512)', positiveInteger)
    .option('--batch-size <n>', 'texts per ONNX run', positiveInteger, DEFAULT_BATCH_SIZE)
    .option('--threads <n>', 'ONNX Runtime intra-op threads', positiveInteger, DEFAULT_THREADS)
    .requiredOption('--out <file.npy>', 'output .npy file (written atomically)')
    .action(async (modelDir: string, textsPath: string, opts: EmbedOptions) => {
      try {
        const texts = await readTextLines(textsPath);
        const started = performance.now();
        const encoder = await BertEncoder.load(modelDir, { threads: opts.threads });
        try {
          let lastReport = 0;
          const result = await encoder.encode(texts, {
            poolings: [opts.pooling],
            batchSize: opts.batchSize,
            ...(opts.maxLength === undefined ? {} : { maxLength: opts.maxLength }),
            onProgress: (done, total) => {
              if (process.stderr.isTTY && (performance.now() - lastReport > 1000 || done === total)) {
                lastReport = performance.now();
                process.stderr.write(`\rembedded ${done}/${total}`);
              }
            },
          });
          await writeNpyFile(opts.out, { data: result.embeddings[opts.pooling], rows: result.rows, cols: result.dim });
          const seconds = (performance.now() - started) / 1000;
          if (process.stderr.isTTY) process.stderr.write('\n');
          console.log(
            `wrote ${opts.out}: ${result.rows} × ${result.dim} float32 (${opts.pooling} pooling, ${result.tokens} tokens, ${seconds.toFixed(1)} s)`,
          );
        } finally {
          await encoder.close();
        }
      } catch (err) {
        console.error(`textshift embed: ${redact((err as Error).message)}`);
        process.exitCode = 1;
      }
    });
}
