/** Command-line parsing for the CIFAR-10 example: flags, defaults, and messages that name the flag at fault. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  BACKEND_NAMES,
  CIFAR10_IMAGE_SIZE,
  SEED_HYP,
  resolveHyp,
  type BackendName,
  type Cifar100LabelKind,
  type ConvPrecision,
  type HypOverrides,
  type SpeedyConvNetMode,
} from '../../src/node.js';

/** A mistake on the command line: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * The flags a run's numbers depend on, as typed; `null` means "not given, decide later". A run records
 * them with the batch sizes decided (run-dir.ts's RunConfig) and --resume must match them.
 */
export interface RunSettings {
  /** Which dataset the run trains on. */
  dataset: DatasetName;
  /** CIFAR-100's labels (fine: 100 classes, coarse: 20 superclasses); null for CIFAR-10. */
  labels: Cifar100LabelKind | null;
  epochs: number;
  batchSize: number;
  /** Null: the batch size, or an automatic size on wasm. */
  microBatch: number | null;
  baseDepth: number;
  /** Null: all 50,000. */
  trainLimit: number | null;
  /** Null: all 10,000. */
  evalLimit: number | null;
  mode: SpeedyConvNetMode;
  /** How the whitening fit treats eigenvector signs before averaging chunks (fitWhitening's signMode). */
  whiteningSigns: 'canonical' | 'raw';
  runs: number;
  seed: number;
  /** Further hyperparameter overrides (`--hyp opt.momentum=0.9`). */
  hyp: HypOverrides;
}

/** Everything `train` needs; `null` means "not given, decide later" (defaults that depend on the backend or on a resumed run). */
export interface TrainConfig extends RunSettings {
  backend: BackendName;
  /** Threads of the wasm backend; null: initBackend's default (one per core, at most 4). */
  wasmThreads: number | null;
  /** How WebGPU's convolutions multiply (--conv-precision); null: not given (float32, or a resumed run's own). */
  convPrecision: ConvPrecision | null;
  /** CIFAR-10 binary directory; undefined: the download cache. */
  data: string | undefined;
  /** Where `data` came from, for messages about it: --data or $CIFAR10_DIR ($CIFAR100_DIR for CIFAR-100). */
  dataFrom: DataOrigin | undefined;
  download: boolean;
  cacheDir: string | undefined;
  /** Null: runs/<timestamp>. */
  out: string | null;
  resume: boolean;
  /** Flags the user typed (so a resumed run can tell a typed value from a default). */
  explicit: ReadonlySet<string>;
  /** --verbose: the Backend line gives every reason in full (metrics.json has them either way). */
  verbose: boolean;
}

/** The datasets the CLI trains on; both in the binary release's format. */
export const DATASETS = ['cifar10', 'cifar100'] as const;
export type DatasetName = (typeof DATASETS)[number];
/** The environment variable naming each dataset's directory when --data is not given. */
export const DATA_DIR_ENV: Record<DatasetName, string> = { cifar10: 'CIFAR10_DIR', cifar100: 'CIFAR100_DIR' };

/** Where a data directory was named: the --data flag, $CIFAR10_DIR, or the config.json of the run being resumed. */
export type DataOrigin = 'flag' | 'env' | 'run-config';

export interface EvaluateConfig {
  model: string;
  dataset: DatasetName;
  /** CIFAR-100's labels; null for CIFAR-10. */
  labels: Cifar100LabelKind | null;
  backend: BackendName;
  /** Threads of the wasm backend; null: initBackend's default (one per core, at most 4). */
  wasmThreads: number | null;
  /** How WebGPU's convolutions multiply (--conv-precision); null: not given (float32). */
  convPrecision: ConvPrecision | null;
  data: string | undefined;
  dataFrom: DataOrigin | undefined;
  download: boolean;
  cacheDir: string | undefined;
  evalLimit: number | null;
  /** Null: 2500, or less on wasm. */
  evalBatch: number | null;
  /** Evaluations of the test set, each with fresh inference noise (the sketch keeps it): their mean and spread are reported. */
  draws: number;
  /** --verbose: the Backend line gives every reason in full. */
  verbose: boolean;
}

export type Command =
  | { command: 'help'; text: string }
  | { command: 'train'; config: TrainConfig }
  | { command: 'evaluate'; config: EvaluateConfig };

/** The seed's configuration: batch 1024, 12.1 epochs, base depth 64. */
export const TRAIN_DEFAULTS = {
  backend: 'auto' as BackendName,
  epochs: SEED_HYP.misc.trainEpochs,
  batchSize: SEED_HYP.opt.batchSize,
  baseDepth: SEED_HYP.net.baseDepth,
  mode: 'sketch' as SpeedyConvNetMode,
  whiteningSigns: 'raw' as 'canonical' | 'raw',
  runs: 1,
  seed: 0,
};

const COMMON_OPTIONS = {
  backend: { type: 'string' },
  'wasm-threads': { type: 'string' },
  'conv-precision': { type: 'string' },
  data: { type: 'string' },
  download: { type: 'boolean' },
  'cache-dir': { type: 'string' },
  'eval-limit': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const TRAIN_OPTIONS = {
  ...COMMON_OPTIONS,
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  'micro-batch': { type: 'string' },
  'base-depth': { type: 'string' },
  'train-limit': { type: 'string' },
  mode: { type: 'string' },
  'whitening-signs': { type: 'string' },
  runs: { type: 'string' },
  seed: { type: 'string' },
  hyp: { type: 'string', multiple: true },
  out: { type: 'string' },
  resume: { type: 'boolean' },
  dataset: { type: 'string' },
  labels: { type: 'string' },
  verbose: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

const EVALUATE_OPTIONS = {
  ...COMMON_OPTIONS,
  model: { type: 'string' },
  'eval-batch': { type: 'string' },
  draws: { type: 'string' },
  dataset: { type: 'string' },
  labels: { type: 'string' },
  verbose: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

const DATA_HELP = `  --dataset NAME        cifar10 or cifar100 (default cifar10); the net's output width follows it (10, 100 or 20)
  --labels KIND         CIFAR-100's labels: fine (100 classes) or coarse (20 superclasses) (default fine)
  --data DIR            the binary release's directory: CIFAR-10's data_batch_1..5.bin, test_batch.bin, or
                        CIFAR-100's train.bin, test.bin, fine_label_names.txt, coarse_label_names.txt;
                        default: $CIFAR10_DIR ($CIFAR100_DIR for cifar100), else the download cache
  --download            allow downloading the dataset (163 MB; CIFAR-100 161 MB) into the cache when it is not there
  --cache-dir DIR       download cache (default $XDG_CACHE_HOME/tfjs-dataflow or ~/.cache/tfjs-dataflow)
  --backend NAME        ${BACKEND_NAMES.join('|')} (default auto: hardware WebGPU, tensorflow, wasm, cpu)
  --wasm-threads N      threads of the wasm backend, 1 to 4 (default: one per core, at most 4; about 1.7x faster
                        training on 2 cores than 1; sums run in another order, so the last bits differ from a
                        one-thread run); 1 runs the single-threaded build
  --conv-precision P    float32 or float16: how the webgpu backend's convolutions multiply (default float32);
                        float16 runs f16 operands with f32 sums on tensor cores (subgroup matrices) where the
                        adapter has them, else float32, and the Backend line says which; needs --backend webgpu`;

/**
 * How the CLI was started, so its help shows the command to type: the package bin (`tfjs-dataflow-cifar10 train`)
 * or a checkout's npm scripts (`npm run train --`, flags after the `--`).
 */
export type Invocation = 'bin' | 'npm';

/** The name of the package bin. */
export const BIN_NAME = 'tfjs-dataflow-cifar10';

/** What to type to run `command` with flags, as the user invoked the CLI. */
export function commandPrefix(command: 'train' | 'evaluate', invocation: Invocation): string {
  return invocation === 'npm' ? `npm run ${command} --` : `${BIN_NAME} ${command}`;
}

/** The help without a command (the bin's alone: each npm script runs one command). */
export function mainHelp(): string {
  return `Usage: ${BIN_NAME} <command> [flags]

Trains the seed's SpeedyConvNet network sketch on CIFAR-10 with TensorFlow.js, or evaluates a saved one.

Commands:
  train      train (${BIN_NAME} train [flags])
  evaluate   test accuracy of a saved model with flip test-time augmentation (${BIN_NAME} evaluate --model DIR)

Run '${BIN_NAME} <command> --help' for its flags.`;
}

export function trainHelp(invocation: Invocation): string {
  return `Usage: ${commandPrefix('train', invocation)} [flags]

Trains SpeedyConvNet with the seed's recipe and prints the seed's table each epoch.
Defaults are the seed's configuration: 12.1 epochs, batch 1024, base depth 64.

${DATA_HELP}
  --epochs N            training epochs, fractional allowed (default ${TRAIN_DEFAULTS.epochs})
  --batch-size N        images per optimiser step (default ${TRAIN_DEFAULTS.batchSize})
  --micro-batch N       images per forward/backward pass, a divisor of the batch size; gradients are summed
                        (default: the batch size; on wasm chosen to fit the heap, e.g. 128 at base depth 64)
  --base-depth N        channels of the first conv group; the others are 4x and 8x (default ${TRAIN_DEFAULTS.baseDepth})
  --train-limit N       use the first N training images (default all 50000)
  --eval-limit N        use the first N test images (default all 10000)
  --mode MODE           sketch (the seed: cut + noise between groups) or backprop (end to end) (default sketch)
  --whitening-signs S   raw (the seed: the solver's eigenvector signs averaged as they come) or canonical
                        (each chunk's eigenvectors sign-fixed before averaging) (default raw; see docs/results.md)
  --runs N              independent runs (seeds seed, seed+1, ...); prints the mean and variance of their final
                        test accuracy: the EMA net's, or the live net's in a run that ends before the EMA starts;
                        one run prints its accuracy alone (default 1)
  --seed N              seed of the first run (default ${TRAIN_DEFAULTS.seed})
  --hyp KEY=VALUE       override a hyperparameter, e.g. --hyp opt.momentum=0.9 (repeatable; keys as in SEED_HYP)
  --out DIR             where metrics.json, curves.svg, checkpoint/ and model/ go (default runs/<timestamp>)
  --resume              continue the run in --out from its last checkpoint (flags not given are taken from it)
  --verbose             the Backend line with every reason in full (metrics.json's backend.reason has them anyway)
  -h, --help            this text

Ctrl-C, SIGTERM, SIGHUP or SIGQUIT stops after the current step, writes a checkpoint and exits by the signal; --resume continues.
A kill at any other moment loses at most the steps since the last epoch's checkpoint.`;
}

export function evaluateHelp(invocation: Invocation): string {
  return `Usage: ${commandPrefix('evaluate', invocation)} --model DIR [flags]

Loads a model saved by 'train' (DIR/model.json + weights.bin) and prints its test accuracy with flip
test-time augmentation, normalising the images with the statistics saved alongside the model.

  --model DIR           the saved model directory (a run's model/ folder)
${DATA_HELP}
  --eval-limit N        use the first N test images (default all 10000)
  --eval-batch N        images per evaluation batch (default 2500; less on wasm)
  --draws K             evaluate K times and report the mean and spread (default 1): the sketch keeps its
                        discrete-action noise at inference, so each evaluation is one random draw
  --verbose             the Backend line with every reason in full
  -h, --help            this text`;
}

function flagList(options: Record<string, { short?: string }>): string {
  return Object.entries(options)
    .map(([name, o]) => (o.short ? `--${name} (-${o.short})` : `--${name}`))
    .join(', ');
}

/** Edit distance between two short strings: insertions, deletions, substitutions and swaps of neighbours (`trian`). */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known names closest to `typed` (several when they tie): within an edit distance of a third of its length (at
 * least 1, at most 3), or those that start with it (`batch` for `batch-size`); case and `_` for `-` are forgiven.
 * Empty when none is close.
 */
export function closest(typed: string, known: readonly string[]): string[] {
  const t = typed.toLowerCase().replace(/_/g, '-');
  const limit = Math.min(3, Math.max(1, Math.floor(t.length / 3)));
  const scored = known
    .map((name) => ({
      name,
      distance: Math.min(editDistance(t, name), t.length >= 3 && name.startsWith(t) ? 0.5 : Number.POSITIVE_INFINITY),
    }))
    .filter((c) => c.distance <= limit);
  const best = Math.min(...scored.map((c) => c.distance));
  return scored.filter((c) => c.distance === best).map((c) => c.name);
}

/** Which command a flag belongs to when it is not `command`'s, for "a flag of 'train'". */
function otherCommandOf(command: string, name: string): string | undefined {
  if (command !== 'train' && name in TRAIN_OPTIONS) return 'train';
  if (command !== 'evaluate' && name in EVALUATE_OPTIONS) return 'evaluate';
  return undefined;
}

/** "Did you mean --epochs?" for an unknown flag, or that it belongs to the other command; '' when nothing is close. */
function suggestFlag(command: string, typed: string, options: Record<string, { short?: string }>): string {
  const other = otherCommandOf(command, typed);
  if (other) return `--${typed} is a flag of '${other}', not '${command}'.`;
  const names = closest(typed, Object.keys(options));
  return names.length === 0 ? '' : `Did you mean ${names.map((n) => `--${n}`).join(' or ')}?`;
}

/** Parses with node:util parseArgs, turning its errors into UsageErrors that suggest the flag meant and list the valid ones. */
function parseFlags<O extends ParseArgsConfig['options']>(command: string, args: string[], options: O) {
  const parse = () => parseArgs({ args, options, strict: true, allowPositionals: false, tokens: true });
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (e) {
    const code = (e as { code?: string }).code;
    const message = (e as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, '');
    const known = options as Record<string, { short?: string }>;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const typed = code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'--?([^'=]+)/.exec(message)?.[1] : undefined;
      const hint = typed === undefined ? '' : suggestFlag(command, typed, known);
      throw new UsageError(`${message}.${hint ? ` ${hint}` : ''} Valid flags for '${command}': ${flagList(known)}`);
    }
    throw new UsageError((e as Error).message.replace(/\n/g, ' '));
  }
  // parseArgs keeps the last of a repeated flag: a typo'd command line would run with half of what was typed.
  const seen = new Map<string, string[]>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    seen.set(token.name, [...(seen.get(token.name) ?? []), token.value ?? 'true']);
  }
  for (const [name, values] of seen) {
    if (values.length > 1 && !(options as Record<string, { multiple?: boolean }>)[name]?.multiple) {
      throw new UsageError(`--${name} is given ${values.length} times (${values.map((v) => `'${v}'`).join(', ')}); give it once`);
    }
  }
  return parsed;
}

function integer(flag: string, text: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new UsageError(`--${flag} must be ${range}, got '${text}'`);
  }
  return value;
}

function choice<T extends string>(flag: string, text: string | undefined, choices: readonly T[]): T | undefined {
  if (text === undefined) return undefined;
  if (!(choices as readonly string[]).includes(text)) {
    throw new UsageError(`--${flag} must be one of ${choices.join(', ')}, got '${text}'`);
  }
  return text as T;
}

/** The values of --conv-precision (initBackend's webgpuConvPrecision). */
export const CONV_PRECISIONS = ['float32', 'float16'] as const satisfies readonly ConvPrecision[];

/**
 * --conv-precision applies to WebGPU only: on another backend it would change nothing, and 'auto' may pick one.
 * `backend` is where it runs; `fromRun`: the backend is a resumed run's, not a flag.
 */
export function checkConvPrecisionBackend(precision: ConvPrecision | null, backend: BackendName, fromRun = false): void {
  if (precision === null || backend === 'webgpu') return;
  const why = backend === 'auto' ? " (auto may pick a backend without WebGPU's convolutions)" : '';
  throw new UsageError(
    fromRun
      ? `--conv-precision applies to the webgpu backend, and the run being resumed trains on '${backend}': drop --conv-precision, or add --backend webgpu`
      : `--conv-precision applies to the webgpu backend: use it with --backend webgpu, not '${backend}'${why}`,
  );
}

/** The largest seed: the net's layers add small offsets to it, and each must stay a safe integer. */
export const MAX_SEED = Number.MAX_SAFE_INTEGER - 1000;
/** The most runs in one battery. */
const MAX_RUNS = 1000;

/** Flags that set a hyperparameter themselves, so --hyp must not set it too. */
const HYP_FLAGS: Record<string, string> = {
  'misc.trainEpochs': '--epochs',
  'opt.batchSize': '--batch-size',
  'net.baseDepth': '--base-depth',
};

/** Parses `--hyp section.field=value` (or `misc.ema.field=value`) into overrides, checking the key against SEED_HYP. */
export function parseHypOverrides(entries: readonly string[]): HypOverrides {
  const out: Record<string, Record<string, unknown>> = {};
  // Keyed once each, as flags are: a repeated key would otherwise keep its last value silently.
  const given = new Map<string, string[]>();
  for (const entry of entries) {
    const m = /^([a-zA-Z.]+)=(.*)$/.exec(entry);
    if (m) given.set(m[1]!, [...(given.get(m[1]!) ?? []), m[2]!]);
  }
  for (const [key, values] of given) {
    if (values.length > 1) {
      throw new UsageError(`--hyp ${key} is given ${values.length} times (${values.map((v) => `'${v}'`).join(', ')}); give it once`);
    }
  }
  for (const entry of entries) {
    const m = /^([a-zA-Z.]+)=(.*)$/.exec(entry);
    if (!m) throw new UsageError(`--hyp expects KEY=VALUE such as opt.momentum=0.9, got '${entry}'`);
    const [, key, text] = m as unknown as [string, string, string];
    const path = key.split('.');
    let node: unknown = SEED_HYP;
    for (const part of path) node = (node as Record<string, unknown> | undefined)?.[part];
    if (typeof node !== 'number') {
      const keys = (['opt', 'net', 'misc'] as const).flatMap((s) =>
        Object.entries(SEED_HYP[s]).flatMap(([f, v]) =>
          typeof v === 'number' ? [`${s}.${f}`] : Object.keys(v as object).map((g) => `${s}.${f}.${g}`),
        ),
      );
      throw new UsageError(`--hyp: unknown hyperparameter '${key}'. Valid keys: ${keys.join(', ')}`);
    }
    if (HYP_FLAGS[key]) throw new UsageError(`--hyp ${key}: use ${HYP_FLAGS[key]} instead`);
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value)) throw new UsageError(`--hyp ${key} must be a finite number, got '${text}'`);
    if (path.length === 3) {
      const misc = (out['misc'] ??= {});
      ((misc['ema'] ??= {}) as Record<string, number>)[path[2]!] = value;
    } else {
      (out[path[0]!] ??= {})[path[1]!] = value;
    }
  }
  return out as HypOverrides;
}

/**
 * Checks the hyperparameters the flags make against resolveHyp's ranges, and against each other for the
 * datasets' 32x32 images (the crop, cutmix and whitening fit), so a bad value is a usage error before
 * anything is loaded or written. The message names the flag.
 */
export function checkHypFlags(hyp: HypOverrides, flags: { epochs: number; batchSize: number; baseDepth: number }): void {
  try {
    resolveHyp(
      {
        ...hyp,
        opt: { ...hyp.opt, batchSize: flags.batchSize },
        net: { ...hyp.net, baseDepth: flags.baseDepth },
        misc: { ...hyp.misc, trainEpochs: flags.epochs },
      },
      // CIFAR-100's images are CIFAR-10's size.
      { imageSize: CIFAR10_IMAGE_SIZE },
    );
  } catch (e) {
    const message = (e as Error).message;
    const m = /^hyp\.(\S+) (must be .*)$/.exec(message);
    if (!m) throw new UsageError(`--hyp: ${message}`);
    throw new UsageError(`${HYP_FLAGS[m[1]!] ?? `--hyp ${m[1]}`} ${m[2]}`);
  }
}

function dataFlags(
  values: {
    dataset?: string;
    labels?: string;
    data?: string;
    download?: boolean;
    'cache-dir'?: string;
    backend?: string;
    'wasm-threads'?: string;
    'conv-precision'?: string;
  },
  env: NodeJS.ProcessEnv,
  /** --resume without --backend: the backend is the run's, checked once it is read. */
  backendFromRun = false,
) {
  const dataset = choice('dataset', values.dataset, DATASETS) ?? 'cifar10';
  const labelKind = choice('labels', values.labels, ['fine', 'coarse'] as const);
  if (labelKind !== undefined && dataset !== 'cifar100') {
    throw new UsageError(`--labels applies to CIFAR-100: use it with --dataset cifar100, not '${dataset}'`);
  }
  const envDir = env[DATA_DIR_ENV[dataset]];
  const fromEnv = values.data === undefined && envDir !== undefined && envDir.length > 0;
  const backend = choice('backend', values.backend, BACKEND_NAMES) ?? TRAIN_DEFAULTS.backend;
  const wasmThreads = integer('wasm-threads', values['wasm-threads'], 1, 4) ?? null;
  if (wasmThreads !== null && backend !== 'wasm' && backend !== 'auto') {
    throw new UsageError(`--wasm-threads applies to the wasm backend: use it with --backend wasm or auto, not '${backend}'`);
  }
  const convPrecision = choice('conv-precision', values['conv-precision'], CONV_PRECISIONS) ?? null;
  if (!backendFromRun) checkConvPrecisionBackend(convPrecision, backend);
  return {
    dataset,
    labels: dataset === 'cifar100' ? (labelKind ?? ('fine' as const)) : null,
    backend,
    wasmThreads,
    convPrecision,
    data: values.data ?? (fromEnv ? envDir : undefined),
    dataFrom: values.data !== undefined ? ('flag' as const) : fromEnv ? ('env' as const) : undefined,
    download: values.download ?? false,
    cacheDir: values['cache-dir'],
  };
}

/**
 * Parses `argv` (without the node and script paths) into a command and its config, or
 * throws a {@link UsageError} naming the flag at fault. `env` supplies CIFAR10_DIR;
 * `invocation` (the package bin by default) is how the help says to run a command.
 */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, invocation: Invocation = 'bin'): Command {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') return { command: 'help', text: mainHelp() };
  if (command === 'train') return parseTrain(rest, env, invocation);
  if (command === 'evaluate') return parseEvaluate(rest, env, invocation);
  const meant = closest(command, ['train', 'evaluate']);
  throw new UsageError(
    `unknown command '${command}'; expected 'train' or 'evaluate'${meant.length ? `. Did you mean '${meant[0]}'?` : ''}`,
  );
}

function parseTrain(args: string[], env: NodeJS.ProcessEnv, invocation: Invocation): Command {
  const { values, tokens } = parseFlags('train', args, TRAIN_OPTIONS);
  if (values.help) return { command: 'help', text: trainHelp(invocation) };
  const explicit = new Set(tokens.flatMap((t) => (t.kind === 'option' ? [t.name] : [])));
  const epochsText = values.epochs;
  let epochs: number = TRAIN_DEFAULTS.epochs;
  if (epochsText !== undefined) {
    epochs = Number(epochsText);
    if (epochsText.trim() === '' || !Number.isFinite(epochs) || epochs <= 0) {
      throw new UsageError(`--epochs must be a positive number (fractions allowed, e.g. 12.1), got '${epochsText}'`);
    }
  }
  const batchSize = integer('batch-size', values['batch-size'], 1) ?? TRAIN_DEFAULTS.batchSize;
  const microBatch = integer('micro-batch', values['micro-batch'], 1) ?? null;
  if (microBatch !== null && batchSize % microBatch !== 0) {
    throw new UsageError(`--micro-batch must divide --batch-size ${batchSize}, got ${microBatch}`);
  }
  const trainLimit = integer('train-limit', values['train-limit'], 1, 50_000) ?? null;
  if (trainLimit !== null && trainLimit < batchSize) {
    throw new UsageError(`--train-limit ${trainLimit} is smaller than one batch (--batch-size ${batchSize})`);
  }
  if (values.resume && values.out === undefined) {
    throw new UsageError('--resume needs --out DIR naming the run to continue');
  }
  const baseDepth = integer('base-depth', values['base-depth'], 1) ?? TRAIN_DEFAULTS.baseDepth;
  const hyp = parseHypOverrides(values.hyp ?? []);
  checkHypFlags(hyp, { epochs, batchSize, baseDepth });
  if (values.out !== undefined && values.out.trim() === '') throw new UsageError("--out must name a directory, got ''");
  const runs = integer('runs', values.runs, 1, MAX_RUNS) ?? TRAIN_DEFAULTS.runs;
  const seed = integer('seed', values.seed, 0, MAX_SEED) ?? TRAIN_DEFAULTS.seed;
  // Run r trains with seed + r - 1: every run's seed is checked, not only the first's.
  if (seed + runs - 1 > MAX_SEED) {
    throw new UsageError(
      `--seed ${seed} with --runs ${runs} uses seeds ${seed} to ${seed + runs - 1}, beyond the largest allowed seed ${MAX_SEED}; lower --seed to at most ${MAX_SEED - runs + 1}`,
    );
  }
  return {
    command: 'train',
    config: {
      ...dataFlags(values, env, values.resume === true && values.backend === undefined),
      epochs,
      batchSize,
      microBatch,
      baseDepth,
      trainLimit,
      evalLimit: integer('eval-limit', values['eval-limit'], 1, 10_000) ?? null,
      mode: choice('mode', values.mode, ['sketch', 'backprop'] as const) ?? TRAIN_DEFAULTS.mode,
      whiteningSigns: choice('whitening-signs', values['whitening-signs'], ['canonical', 'raw'] as const) ?? TRAIN_DEFAULTS.whiteningSigns,
      runs,
      seed,
      hyp,
      out: values.out ?? null,
      resume: values.resume ?? false,
      explicit,
      verbose: values.verbose ?? false,
    },
  };
}

function parseEvaluate(args: string[], env: NodeJS.ProcessEnv, invocation: Invocation): Command {
  const { values } = parseFlags('evaluate', args, EVALUATE_OPTIONS);
  if (values.help) return { command: 'help', text: evaluateHelp(invocation) };
  if (values.model === undefined)
    throw new UsageError('evaluate needs --model DIR (a directory holding model.json, e.g. runs/<time>/model)');
  return {
    command: 'evaluate',
    config: {
      ...dataFlags(values, env),
      model: values.model,
      evalLimit: integer('eval-limit', values['eval-limit'], 1, 10_000) ?? null,
      evalBatch: integer('eval-batch', values['eval-batch'], 1) ?? null,
      draws: integer('draws', values.draws, 1, 1000) ?? 1,
      verbose: values.verbose ?? false,
    },
  };
}
