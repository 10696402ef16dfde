/** How the CLI's processes end. */

/**
 * The signals that stop a run after the current step, with a checkpoint, and the exit code of a run stopped by each
 * (128 + its number, as a shell reports it): Ctrl-C, a dropped SSH session or closed terminal (SIGHUP), Ctrl-\ (SIGQUIT)
 * and kill, systemd, docker stop or CI (SIGTERM). Left to their default action they would end the process at once.
 */
export const SIGNAL_EXIT_CODES = { SIGHUP: 129, SIGINT: 130, SIGQUIT: 131, SIGTERM: 143 } as const;
export type StopSignal = keyof typeof SIGNAL_EXIT_CODES;

/**
 * Ends the process with `code`. 129, 130, 131 and 143 are ended by re-raising SIGHUP, SIGINT, SIGQUIT or
 * SIGTERM once the run has saved its work, so the parent sees the process killed by that signal: a shell
 * then reports $? 129, 130, 131 or 143 and stops a script's loop, and `npm run` exits the same way quietly.
 */
export function exitWith(code: number): never {
  const signal = (Object.keys(SIGNAL_EXIT_CODES) as StopSignal[]).find((s) => SIGNAL_EXIT_CODES[s] === code);
  if (signal) {
    // Without listeners the signal's default action applies: termination.
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
  process.exit(code);
}
