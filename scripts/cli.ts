#!/usr/bin/env node
// The textshift CLI: each command lives in src/cli/ and only translates arguments into a core call.
import { Command } from 'commander';

const program = new Command('textshift')
  .description('Text-classifier transfer experiments, locally or on AWS, with cost reports.')
  .showHelpAfterError();

await program.parseAsync(process.argv);
