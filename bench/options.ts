// Flags both bench scripts take (node:util parseArgs form), with the same defaults.
export const COMMON_BENCH_OPTIONS = {
  backend: { type: 'string', default: 'wasm' },
  batch: { type: 'string', default: '64' },
  steps: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '3' },
  'base-depth': { type: 'string', default: '64' },
  json: { type: 'string' },
} as const;
