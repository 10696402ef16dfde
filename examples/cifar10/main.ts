/** The CIFAR-10 example's entry point, shared by the package bin (cli.ts) and the npm scripts (train.ts, evaluate.ts). */
import { UsageError, parseCommandLine } from './args.js';
import { evaluateCommand } from './evaluation.js';
import { trainCommand, type CliIO } from './training.js';

export type { CliIO } from './training.js';

/**
 * Runs the command line `argv` (e.g. `['train', '--epochs', '2']`) and resolves to the exit
 * code: 0 done, 1 failed (including a non-finite loss), 2 a usage mistake, 130 or 143
 * interrupted by SIGINT or SIGTERM after writing a checkpoint (exit.ts's `exitWith` ends the
 * process by that signal). Never calls process.exit (a second signal does).
 */
export async function main(argv: readonly string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  try {
    const parsed = parseCommandLine(argv);
    switch (parsed.command) {
      case 'help':
        io.stdout.write(`${parsed.text}\n`);
        return 0;
      case 'train':
        return await trainCommand(parsed.config, io);
      case 'evaluate':
        return await evaluateCommand(parsed.config, io);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`tfjs-dataflow-cifar10: ${e.message}\nRun with --help for usage.\n`);
      return 2;
    }
    io.stderr.write(`tfjs-dataflow-cifar10: ${(e as Error).message}\n`);
    if (process.env['DEBUG']) io.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
}
