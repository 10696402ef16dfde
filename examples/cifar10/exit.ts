/** How the CLI's processes end. */

/** The exit code of a run stopped by each signal (128 + its number, as a shell reports it). */
export const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
export type StopSignal = keyof typeof SIGNAL_EXIT_CODES;

/**
 * Ends the process with `code`. 130 and 143 are ended by re-raising SIGINT or SIGTERM once the
 * run has saved its work, so the parent sees the process killed by that signal: a shell then
 * reports $? 130 or 143 and stops a script's loop, and `npm run` exits the same way quietly.
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
