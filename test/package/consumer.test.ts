import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The package as a user meets it: `npm pack`, then the tarball installed into a fresh project outside this
// repository, once as the README's first install line says (tfjs-core, tfjs-layers, the cpu and wasm backends)
// and once beside the design card's `@tensorflow/tfjs@4.22.0`, where npm adds the wasm backend as a peer. In each,
// an ESM and a CommonJS script set the backend as `initBackend()` picks it (wasm: no GPU, no tfjs-node here),
// build a model from the library's layers (ConvGroup, DiscreteAction, ...), train it a few steps with Trainer,
// save it, load it back and predict with a seed (the same logits as the trained model's); then the same for a
// model of stock tfjs layers, which the Trainer trains with its plain recipe. In the first, tsc checks both entries' types under moduleResolution node10, node16,
// nodenext and bundler.
// npm installs against its cache first (`--prefer-offline`); .ci/run fills the cache before `npm test`.
// The test skips, saying why, only when npm is missing or neither the cache nor the registry has a package.

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What the consumer's project installs beside the tarball and imports tfjs as. */
const PROJECTS = {
  "the README's first install line": {
    dependencies: [
      '@tensorflow/tfjs-core@4.22.0',
      '@tensorflow/tfjs-layers@4.22.0',
      '@tensorflow/tfjs-backend-cpu@4.22.0',
      '@tensorflow/tfjs-backend-wasm@4.22.0',
    ],
    esm: "import * as tf from '@tensorflow/tfjs-core';\nimport * as tfl from '@tensorflow/tfjs-layers';",
    cjs: "const tf = require('@tensorflow/tfjs-core');\nconst tfl = require('@tensorflow/tfjs-layers');",
    typeCheck: true,
  },
  "the design card's @tensorflow/tfjs@4.22.0": {
    dependencies: ['@tensorflow/tfjs@4.22.0'],
    esm: "import * as tf from '@tensorflow/tfjs';\nconst tfl = tf;",
    cjs: "const tf = require('@tensorflow/tfjs');\nconst tfl = tf;",
    typeCheck: false,
  },
} as const;

/**
 * A TypeScript user of both entries: every import must resolve to real types (each wrong call below is an
 * error, so an entry whose types fell back to `any` fails), and both entries must share one library's types.
 */
const TYPE_CHECK = `import { ConvGroup, Trainer, initBackend, type BackendReport } from 'tfjs-dataflow';
import { Trainer as NodeTrainer, fileHandler, initBackend as initNodeBackend } from 'tfjs-dataflow/node';

// @ts-expect-error channelsOut is a number
new ConvGroup({ channelsOut: 'four' });
// @ts-expect-error not a backend tfjs-dataflow knows
void initBackend('webgl');
// @ts-expect-error wasmThreads is a number
void initNodeBackend('wasm', { wasmThreads: 'two' });
// @ts-expect-error a directory path
fileHandler(42);
export const report: Promise<BackendReport> = initNodeBackend('auto');
export const same: typeof Trainer = NodeTrainer;
`;

/** moduleResolution -> the tsconfig's compiler options and the files it checks. */
const TYPE_CHECKS = {
  node10: { options: { module: 'commonjs', moduleResolution: 'node10' }, files: ['check.ts'] },
  node16: { options: { module: 'node16', moduleResolution: 'node16' }, files: ['check.mts', 'check.cts'] },
  nodenext: { options: { module: 'nodenext', moduleResolution: 'nodenext' }, files: ['check.mts', 'check.cts'] },
  bundler: { options: { module: 'esnext', moduleResolution: 'bundler' }, files: ['check.ts'] },
} as const;

/**
 * The consumer's script after its imports (`tf`, `tfl`, `dataflow` from 'tfjs-dataflow', `dataflowNode` from
 * 'tfjs-dataflow/node'): prints one JSON line saying what happened, for the test to check.
 */
const SCRIPT_BODY = `
const { ConvGroup, DiscreteAction, GlobalMaxPool, Linear, Trainer, reflectPad } = dataflow;
const { fileHandler, initBackend } = dataflowNode;
const report = await initBackend();

// A model of one's own from the library's layers: two conv groups in the sketch's dataflow.
const input = tfl.input({ shape: [8, 8, 3], name: 'images' });
const [y1, statePred2] = new ConvGroup({ name: 'block_1', channelsOut: 4, statePredDim: 8, seed: 1 }).apply(input);
const x1 = new DiscreteAction({ name: 'action_1', seed: 2 }).apply(y1);
const y2 = new ConvGroup({ name: 'block_2', channelsOut: 8, seed: 3 }).apply(x1);
const x2 = tfl.layers.add({ name: 'residual' }).apply([new DiscreteAction({ name: 'action_2', seed: 4 }).apply(y2), statePred2]);
const pooled = new GlobalMaxPool({ name: 'pool' }).apply(x2);
const model = tfl.model({ inputs: input, outputs: new Linear({ name: 'head', units: 4, temperature: 1 / 12, seed: 5 }).apply(pooled) });

// 32 images of 4 classes; the training images reflect-padded by the recipe's padAmount (2).
const images = tf.randomNormal([32, 8, 8, 3], 0, 1, 'float32', 7);
const targets = tf.cast(tf.oneHot(tf.tensor1d(Array.from({ length: 32 }, (_, i) => i % 4), 'int32'), 4), 'float32');
const data = { train: { images: reflectPad(images, 2), targets }, eval: { images, targets } };
const before = Array.from(await model.getLayer('head').weights[0].read().data());
const losses = [];
const trainer = new Trainer({ model, hyp: { opt: { batchSize: 8 }, misc: { trainEpochs: 1, evalBatchSize: 16, ema: { epochs: 1, everyNSteps: 2 } } } }, data, {
  seed: 1, logEvery: 1, callbacks: { onStep: (s) => { losses.push(s.loss); } },
});
const result = await trainer.run();
const after = Array.from(await model.getLayer('head').weights[0].read().data());

const dir = process.argv[2];
await model.save(fileHandler(dir));
const loaded = await tfl.loadLayersModel(fileHandler(dir));
let sameWeights = loaded.weights.length === model.weights.length;
for (const [i, w] of model.weights.entries()) {
  const a = await w.read().data();
  const b = await loaded.weights[i].read().data();
  sameWeights = sameWeights && w.originalName === loaded.weights[i].originalName && a.every((v, j) => v === b[j]);
}
// Predictions of the loaded model: seeded, the same as the trained model's bit for bit; unseeded, the seed's noise.
const logitsOf = async (m, options) => Array.from(await dataflow.predictWithFlipTTA(m, images, options).data());
const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
const seededSame = same(await logitsOf(model, { seed: 7 }), await logitsOf(loaded, { seed: 7 }));
const unseededDiffer = !same(await logitsOf(loaded), await logitsOf(loaded));

// A model of stock tfjs layers: the Trainer's defaults choose the plain recipe; saved, loaded, predicted alike.
const stock = tfl.sequential({
  layers: [
    tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, padding: 'same' }),
    tfl.layers.batchNormalization(),
    tfl.layers.reLU(),
    tfl.layers.flatten(),
    tfl.layers.dense({ units: 4 }),
  ],
});
const stockTrainer = new Trainer({ model: stock, hyp: { opt: { batchSize: 8 }, misc: { trainEpochs: 1, evalBatchSize: 16 } } }, data, { seed: 1 });
const stockResult = await stockTrainer.run();
stockTrainer.dispose();
await stock.save(fileHandler(dir + '-stock'));
const stockLoaded = await tfl.loadLayersModel(fileHandler(dir + '-stock'));
const stockSame = same(await logitsOf(stock, { seed: 7 }), await logitsOf(stockLoaded, { seed: 7 }));

console.log(JSON.stringify({
  backend: report.backend,
  reason: report.reason,
  tfjsCore: tf.version_core,
  oneLibrary: dataflow.Trainer === dataflowNode.Trainer,
  stopReason: result.stopReason,
  steps: result.records.at(-1).steps,
  valAcc: result.records.at(-1).valAcc,
  emaStarted: trainer.networkEMA !== null,
  losses,
  discreteActions: trainer.discreteActions.map((d) => d.name),
  headMoved: after.some((v, i) => v !== before[i]),
  savedFiles: (await import('node:fs')).readdirSync(dir).sort(),
  loadedClasses: [loaded.getLayer('block_1') instanceof ConvGroup, loaded.getLayer('action_2') instanceof DiscreteAction],
  loadedStatePredDim: loaded.getLayer('block_1').statePredDim,
  sameWeights,
  seededSame,
  unseededDiffer,
  stock: { recipe: stockResult.recipe.name, stopReason: stockResult.stopReason, steps: stockResult.records.at(-1).steps, predictedSame: stockSame },
}));
`;

function esmScript(header: string): string {
  return `${header}\nimport * as dataflow from 'tfjs-dataflow';\nimport * as dataflowNode from 'tfjs-dataflow/node';\n${SCRIPT_BODY}`;
}

function cjsScript(header: string): string {
  // CommonJS has no top-level await: the same body in an async function.
  return (
    `${header}\nconst dataflow = require('tfjs-dataflow');\nconst dataflowNode = require('tfjs-dataflow/node');\n` +
    `(async () => {\n${SCRIPT_BODY}\n})().catch((e) => { console.error(e); process.exit(1); });\n`
  );
}

/** npm's environment without what `npm test` exports about this repository (its prefix, package, lifecycle). */
function npmEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig', 'npm_config_globalconfig']);
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_') || keep.has(k.toLowerCase())));
}

function npm(args: string[], cwd: string): { status: number | null; stdout: string; output: string } {
  const run = spawnSync('npm', args, { cwd, env: npmEnv(), encoding: 'utf8', timeout: 150_000 });
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT')
    throw new Error(`npm ${args.join(' ')} took more than 150 s in ${cwd}`);
  return {
    status: run.error ? null : run.status,
    stdout: run.stdout ?? '',
    output: `${run.error?.message ?? ''}${run.stdout ?? ''}${run.stderr ?? ''}`,
  };
}

/**
 * npm's failures when a package is neither in its cache nor reachable in the registry (a manifest it could
 * not read shows in a peer-dependency report as `Found: <package>@undefined`).
 */
const UNAVAILABLE =
  /ENOTCACHED|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|request to \S+ failed|Found: \S+@undefined/;

let work = '';
let tarball = '';
/** The tarball's files, as `npm pack --json` lists them. */
let packedFiles: string[] = [];
let npmMissing: string | null = null;

beforeAll(() => {
  const version = npm(['--version'], root);
  if (version.status !== 0) {
    npmMissing = `npm is not available here (${version.output.trim().split('\n')[0]})`;
    return;
  }
  expect(existsSync(join(root, 'dist', 'index.js')), 'dist/ is missing: run npm run build first (npm test builds it)').toBe(true);
  work = mkdtempSync(join(tmpdir(), 'tfjs-dataflow-consumer-'));
  // --ignore-scripts: pack what is built; building here would race the other tests that read dist/.
  const packed = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', work], root);
  expect(packed.status, packed.output).toBe(0);
  packedFiles = (JSON.parse(packed.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  tarball = join(work, readdirSync(work).find((f) => f.endsWith('.tgz'))!);
}, 60_000);

describe('the packed tarball', () => {
  it('holds every file package.json points to, the ESM bin, and no CommonJS build of the CLI', (ctx) => {
    if (npmMissing) ctx.skip(npmMissing);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const pointed = [
      pkg.main,
      pkg.module,
      pkg.types,
      ...Object.values(pkg.bin),
      ...JSON.stringify(pkg.exports).match(/\.\/dist\/[^"]+/g)!,
      ...Object.values(pkg.typesVersions['*']).flat(),
    ].map((p) => String(p).replace(/^\.\//, ''));
    for (const path of pointed) expect(packedFiles, path).toContain(path);
    expect(pkg.bin).toEqual({ 'tfjs-dataflow-cifar10': './dist/cifar10-cli.js' });
    expect(packedFiles.filter((f) => f.includes('cifar10-cli')).sort()).toEqual(['dist/cifar10-cli.js', 'dist/cifar10-cli.js.map']);
  });
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed package in a fresh project', () => {
  for (const [name, project] of Object.entries(PROJECTS)) {
    it(`installs beside ${name}; ESM and CommonJS scripts train, save, load and predict (seeded) with a model of the library's layers and one of stock tfjs layers`, (ctx) => {
      if (npmMissing) ctx.skip(npmMissing);
      const dir = join(work, name.replace(/[^a-z0-9]+/gi, '-'));
      mkdirSync(dir);
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
      // A registry that cannot be reached fails in seconds, not after npm's default minute of retries.
      const install = npm(
        [
          'install',
          '--prefer-offline',
          '--no-audit',
          '--no-fund',
          '--ignore-scripts',
          '--fetch-retries=1',
          '--fetch-retry-mintimeout=1000',
          '--fetch-retry-maxtimeout=2000',
          tarball,
          ...project.dependencies,
        ],
        dir,
      );
      if (install.status !== 0 && UNAVAILABLE.test(install.output)) {
        ctx.skip(
          `npm could get ${project.dependencies.join(', ')} neither from its cache nor from the registry: ${UNAVAILABLE.exec(install.output)![0]}`,
        );
      }
      expect(install.status, install.output).toBe(0);
      // Exactly one tfjs-core and one wasm backend: the library's peers are the application's own copies. The
      // wasm backend is a required peer, so npm installs it beside the umbrella package too.
      expect(existsSync(join(dir, 'node_modules', 'tfjs-dataflow', 'node_modules', '@tensorflow'))).toBe(false);
      expect(existsSync(join(dir, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'package.json'))).toBe(true);

      for (const [file, source] of [
        ['train.mjs', esmScript(project.esm)],
        ['train.cjs', cjsScript(project.cjs)],
      ] as const) {
        writeFileSync(join(dir, file), source);
        const modelDir = join(dir, `model-${file.replace('.', '-')}`);
        let stdout: string;
        try {
          stdout = execFileSync(process.execPath, [file, modelDir], {
            cwd: dir,
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'pipe'],
            timeout: 90_000,
          });
        } catch (e) {
          const err = e as { stdout?: string; stderr?: string; message: string };
          throw new Error(`${name}: ${file} failed: ${err.stderr || err.stdout || err.message}`);
        }
        const result = JSON.parse(stdout.trim().split('\n').at(-1)!);
        // No GPU and no tfjs-node here: the documented install trains on wasm, and says nothing about cpu.
        expect(result.reason, file).toMatch(/^WebAssembly SIMD with \d+ threads? \(passed over: webgpu: .*; tensorflow: .*\)$/);
        expect(result, file).toMatchObject({
          backend: 'wasm',
          tfjsCore: '4.22.0',
          oneLibrary: true,
          stopReason: 'completed',
          steps: 4,
          emaStarted: true,
          discreteActions: ['action_1', 'action_2'],
          headMoved: true,
          savedFiles: ['model.json', 'weights.bin'],
          loadedClasses: [true, true],
          loadedStatePredDim: 8,
          sameWeights: true,
          seededSame: true,
          unseededDiffer: true,
          stock: { recipe: 'plain', stopReason: 'completed', steps: 4, predictedSame: true },
        });
        expect(result.losses, file).toHaveLength(4);
        expect(result.losses.every(Number.isFinite), `${file}: ${result.losses}`).toBe(true);
        expect(result.valAcc, file).toBeGreaterThanOrEqual(0);
        expect(result.valAcc, file).toBeLessThanOrEqual(1);
      }

      if (project.typeCheck) {
        const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
        for (const [resolution, { options, files }] of Object.entries(TYPE_CHECKS)) {
          for (const f of files) writeFileSync(join(dir, f), TYPE_CHECK);
          const config = `tsconfig.${resolution}.json`;
          writeFileSync(
            join(dir, config),
            JSON.stringify({
              compilerOptions: {
                ...options,
                target: 'es2022',
                lib: ['es2022', 'dom'],
                strict: true,
                noEmit: true,
                skipLibCheck: true,
                types: [],
              },
              files,
            }),
          );
          const checked = spawnSync(process.execPath, [tsc, '-p', config], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
          expect(checked.status, `tsc, moduleResolution ${resolution}:\n${checked.stdout}${checked.stderr}`).toBe(0);
        }
      }
    }, 300_000);
  }
});
