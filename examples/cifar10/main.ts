/** The CIFAR-10 example's entry point, shared by the package bin (cli.ts) and the npm scripts (train.ts, evaluate.ts). */
import { UsageError, parseCommandLine, type Invocation } from './args.js';
import { evaluateCommand } from './evaluation.js';
import { trainCommand, type CliIO } from './training.js';

export type { CliIO } from './training.js';

/**
 * Runs the command line `argv` (e.g. `['train', '--epochs', '2']`), as started by `invocation` (the package bin,
 * or the npm scripts: the help names the command to type), and resolves to the exit
 * code: 0 done, 1 failed (including a non-finite loss), 2 a usage mistake, 129, 130, 131 or 143
 * interrupted by SIGHUP, SIGINT, SIGQUIT or SIGTERM after writing a checkpoint (exit.ts's `exitWith` ends the
 * process by that signal). Never calls process.exit (a second signal does).
 */
export async function main(
  argv: readonly string[],
  io: CliIO = { stdout: process.stdout, stderr: process.stderr },
  invocation: Invocation = 'bin',
): Promise<number> {
  try {
    const parsed = parseCommandLine(argv, process.env, invocation);
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

/**
 * `npm run` starts a script in the package root, wherever it was typed, and names the directory it was typed in as
 * INIT_CWD: a relative path (--data, --out, --model, --cache-dir, the default runs/<time>) means that directory, as with
 * any command. So the npm scripts' entries (train.ts, evaluate.ts) work there when npm ran them as `script`; a run
 * started otherwise keeps its own working directory, whatever INIT_CWD an enclosing npm left in the environment.
 */
export function useNpmInvocationDir(script: 'train' | 'evaluate', env: NodeJS.ProcessEnv = process.env): void {
  const dir = env['INIT_CWD'];
  if (env['npm_lifecycle_event'] !== script || dir === undefined || dir === '') return;
  try {
    process.chdir(dir);
  } catch (e) {
    process.stderr.write(
      `tfjs-dataflow-cifar10: npm was run in ${dir} (INIT_CWD), which cannot be entered now (${(e as NodeJS.ErrnoException).code}): relative paths are taken from ${process.cwd()}\n`,
    );
  }
}
