import { describe, expect, it } from 'vitest';
import { COMMON_BENCH_OPTIONS, parseBenchArgs } from '../../bench/options.js';

describe('parseBenchArgs, the one argument parser of bench/', () => {
  it('reads flags, defaults and checked integers', () => {
    const args = parseBenchArgs(
      { ...COMMON_BENCH_OPTIONS, 'wasm-threads': { type: 'string' }, quick: { type: 'boolean', default: false } },
      ['--backend', 'cpu', '--batch', '8', '--quick'],
    );
    expect(args.values.backend).toBe('cpu');
    expect(args.values.quick).toBe(true);
    expect(args.int('batch')).toBe(8);
    expect(args.int('steps')).toBe(10); // the default
    expect(args.optionalInt('wasm-threads')).toBeUndefined();
  });

  it('refuses an unknown flag, a positional argument and a non-integer, naming them', () => {
    expect(() => parseBenchArgs(COMMON_BENCH_OPTIONS, ['--bogus'])).toThrow("Unknown option '--bogus'");
    expect(() => parseBenchArgs(COMMON_BENCH_OPTIONS, ['wasm'])).toThrow(/positional argument/);
    const args = parseBenchArgs(COMMON_BENCH_OPTIONS, ['--batch', '6.5', '--steps', '']);
    expect(() => args.int('batch')).toThrow("--batch must be an integer, got '6.5'");
    expect(() => args.int('steps')).toThrow("--steps must be an integer, got ''");
    expect(() => args.int('json')).toThrow("--json must be an integer, got '(nothing)'");
  });
});
