import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file starts its own backends; Dawn and the wasm heap are per process.
    pool: 'forks',
    // Software WebGPU and the cpu backend are slow: generous, never a timing assertion.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: more workers only thrash.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
