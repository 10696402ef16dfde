import { parseArgs } from 'node:util';

/** A flag: a string (numbers are read with `int`) or a boolean switch. */
type OptionSpecs = Record<string, { type: 'string'; default?: string } | { type: 'boolean'; default?: boolean }>;
type OptionValues<T extends OptionSpecs> = { [K in keyof T]: T[K] extends { type: 'boolean' } ? boolean | undefined : string | undefined };

export interface BenchArgs<T extends OptionSpecs> {
  values: OptionValues<T>;
  /** `--name` as an integer: its value or its default; throws when it is absent with no default, or not an integer. */
  int(name: keyof T & string): number;
  /** `--name` as an integer, or undefined when it was not given and has no default. */
  optionalInt(name: keyof T & string): number | undefined;
}

// Flags the SpeedyConvNet bench scripts (run.ts, compare.ts) share, with the same defaults.
export const COMMON_BENCH_OPTIONS = {
  backend: { type: 'string', default: 'wasm' },
  batch: { type: 'string', default: '64' },
  steps: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '3' },
  'base-depth': { type: 'string', default: '64' },
  json: { type: 'string' },
} as const satisfies OptionSpecs;

/**
 * The one argument parser of bench/: node:util's parseArgs, strict (an unknown flag or a positional
 * argument is an error naming it), and integers checked where they are read.
 */
export function parseBenchArgs<const T extends OptionSpecs>(options: T, args: string[] = process.argv.slice(2)): BenchArgs<T> {
  const values = parseArgs({ args, options, strict: true, allowPositionals: false }).values as unknown as OptionValues<T>;
  const text = (name: keyof T & string): string | undefined => {
    const v = (values as Record<string, unknown>)[name];
    return typeof v === 'string' ? v : undefined;
  };
  const int = (name: keyof T & string): number => {
    const v = text(name);
    const n = Number(v);
    if (v == null || v.trim() === '' || !Number.isInteger(n)) throw new Error(`--${name} must be an integer, got '${v ?? '(nothing)'}'`);
    return n;
  };
  const optionalInt = (name: keyof T & string): number | undefined => (text(name) == null ? undefined : int(name));
  return { values, int, optionalInt };
}
