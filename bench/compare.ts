// Runs this library's benchmark and the PyTorch reference (tools/reference/bench_torch.py) back to back,
// one after the other so they never compete for the cores, and prints the throughput ratios.
// Usage: npm run bench:compare -- [--backend wasm] [--batch 64] [--steps 10] [--warmup 3] [--base-depth 64]
//          [--threads 2] [--wasm-threads N] [--python /usr/bin/python3] [--json FILE]
// --threads is PyTorch's thread count; --wasm-threads runs ours on the threaded wasm build (default: one thread).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { COMMON_BENCH_OPTIONS, parseBenchArgs } from './options.js';

const { values, int, optionalInt } = parseBenchArgs({
  ...COMMON_BENCH_OPTIONS,
  threads: { type: 'string', default: '2' },
  'wasm-threads': { type: 'string' },
  python: { type: 'string', default: '/usr/bin/python3' },
});
// Checked here, before either benchmark starts.
for (const name of ['batch', 'steps', 'warmup', 'base-depth', 'threads'] as const) int(name);
optionalInt('wasm-threads');

const dir = mkdtempSync(join(os.tmpdir(), 'bench-compare-'));
const oursFile = join(dir, 'ours.json');
const torchFile = join(dir, 'torch.json');
const common = ['--batch', values.batch!, '--steps', values.steps!, '--warmup', values.warmup!, '--base-depth', values['base-depth']!];

const torchArgs = ['tools/reference/bench_torch.py', ...common, '--threads', values.threads!, '--json', torchFile];
console.log(`$ ${values.python} ${torchArgs.join(' ')}`);
execFileSync(values.python!, torchArgs, { stdio: 'inherit' });
const oursArgs = [
  'tsx',
  'bench/run.ts',
  '--backend',
  values.backend!,
  ...common,
  '--json',
  oursFile,
  ...(values['wasm-threads'] != null ? ['--wasm-threads', values['wasm-threads']] : []),
];
console.log(`$ npx ${oursArgs.join(' ')}`);
execFileSync('npx', oursArgs, { stdio: 'inherit' });

const ours = JSON.parse(readFileSync(oursFile, 'utf8'));
const torch = JSON.parse(readFileSync(torchFile, 'utf8'));
const ratio = (a: number, b: number) => +(a / b).toFixed(4);
const summary = {
  config: {
    batch: +values.batch!,
    baseDepth: +values['base-depth']!,
    steps: +values.steps!,
    warmup: +values.warmup!,
    torchThreads: +values.threads!,
  },
  ours: {
    backend: ours.backend,
    reason: ours.backendReport.reason,
    wasmThreads: ours.threads.wasm,
    trainImagesPerSec: ours.train.imagesPerSec,
    evalImagesPerSec: ours.eval.imagesPerSec,
    peakRssBytes: ours.memory.peakRssBytes,
  },
  torch: {
    backend: torch.backend,
    threads: torch.threads,
    trainImagesPerSec: torch.train.imagesPerSec,
    evalImagesPerSec: torch.eval.imagesPerSec,
    peakRssBytes: torch.peakRssBytes,
  },
  // Below 1: slower than PyTorch.
  ratio: { train: ratio(ours.train.imagesPerSec, torch.train.imagesPerSec), eval: ratio(ours.eval.imagesPerSec, torch.eval.imagesPerSec) },
  loadAverage: { torchBefore: torch.loadAverage?.before, oursAfter: ours.loadAverage?.after, cpus: os.cpus().length },
  details: { ours, torch },
};
console.log(
  `train: ours ${summary.ours.trainImagesPerSec.toFixed(1)} img/s vs PyTorch ${summary.torch.trainImagesPerSec.toFixed(1)} img/s -> ratio ${summary.ratio.train}`,
);
console.log(
  `eval:  ours ${summary.ours.evalImagesPerSec.toFixed(1)} img/s vs PyTorch ${summary.torch.evalImagesPerSec.toFixed(1)} img/s -> ratio ${summary.ratio.eval}`,
);
if (values.json) {
  writeFileSync(values.json, `${JSON.stringify(summary, null, 1)}\n`);
  console.log(`wrote ${values.json}`);
}
