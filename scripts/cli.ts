#!/usr/bin/env node
// The textshift CLI: each command lives in src/cli/ and only translates arguments into a core call.
import { Command } from 'commander';
import { registerRunCommand } from '../src/cli/run.js';
import { registerDataCommand } from '../src/cli/data.js';
import { registerTokenizeCommand } from '../src/cli/tokenize.js';
import { registerEmbedCommand } from '../src/cli/embed.js';
import { registerPlanCommand } from '../src/cli/plan.js';
import { registerCompareCommand, registerRunsCommand } from '../src/cli/runs.js';
import { registerModelsCommand } from '../src/cli/models.js';
import { redact } from '../src/errors/redact.js';

const program = new Command('textshift')
  .description('Text-classifier transfer experiments, locally or on AWS, with cost reports.')
  .showHelpAfterError();

registerRunCommand(program);
registerDataCommand(program);
registerTokenizeCommand(program);
registerEmbedCommand(program);
registerPlanCommand(program);
registerRunsCommand(program);
registerCompareCommand(program);
registerModelsCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // The last line of defence: an error no command caught leaves as one line, with any credentials in it redacted.
  process.stderr.write(`textshift: ${redact(err instanceof Error ? err.message : String(err))}\n`);
  process.exitCode = 1;
}
