/** The custom-block example's command line: its flags, --help, and messages that name the flag at fault. */
import { parseArgs } from 'node:util';
import { BACKEND_NAMES, type BackendName } from '../../src/node.js';

/** A mistake on the command line: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface CustomBlockConfig {
  backend: BackendName;
  epochs: number;
  batchSize: number;
  /** CIFAR-10 binary directory; undefined: synthetic images. */
  data: string | undefined;
  trainLimit: number;
  /** Where the model is saved; undefined: a temporary directory, removed after the round trip. */
  save: string | undefined;
  /** The focal loss's gamma in place of the seed's loss; undefined: the seed's. */
  focalGamma: number | undefined;
  /** The optimiser stage: the seed's SGD, the example's Adam, or tfjs's `tf.train.adam` behind a stage. */
  optimizer: CustomBlockOptimizer;
  /** Adam's learning rate (both Adam stages). */
  adamLr: number;
  /** The brightness jitter's amount added to the seed's batches; undefined: the seed's batches alone. */
  brightness: number | undefined;
}

export const CUSTOM_BLOCK_OPTIMIZERS = ['sgd', 'adam', 'tfjs-adam'] as const;
export type CustomBlockOptimizer = (typeof CUSTOM_BLOCK_OPTIMIZERS)[number];

export const CUSTOM_BLOCK_HELP = `Usage: npx tsx examples/custom-block/index.ts [flags]

Puts a user-defined ResidualBlock into SpeedyConvNet's dataflow, trains it with the seed's recipe, then saves
it and loads it back (docs/extending.md walks through it). Without --data it trains on synthetic images.

  --backend NAME        ${BACKEND_NAMES.join('|')} (default auto)
  --epochs N            training epochs, fractional allowed (default 3)
  --batch-size N        images per optimiser step (default 64)
  --data DIR            CIFAR-10's binary directory (data_batch_1..5.bin, test_batch.bin); default synthetic images
  --train-limit N       with --data: the first N training images, and up to 2000 test images (default 2048)
  --save DIR            keep the saved model there (default: a temporary directory, removed afterwards)
  --focal-gamma G       swap the recipe's loss stage for the example's focal loss (stages.ts), G >= 0
  --optimizer NAME      sgd (the seed's, default), adam (the example's own, checkpointed) or tfjs-adam (tf.train.adam
                        behind a stage; cannot be checkpointed): swaps the recipe's optimiser stage (stages.ts)
  --adam-lr LR          Adam's learning rate (default 0.002)
  --brightness A        add the example's brightness jitter (stages.ts) to the seed's batches: each training image
                        shifted by up to +-A (in channel stds), A > 0
  -h, --help            this text`;

const OPTIONS = {
  backend: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  data: { type: 'string' },
  'train-limit': { type: 'string' },
  save: { type: 'string' },
  'focal-gamma': { type: 'string' },
  optimizer: { type: 'string' },
  'adam-lr': { type: 'string' },
  brightness: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function number(flag: string, text: string | undefined, fallback: number, check: (v: number) => boolean, expected: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || !check(value)) throw new UsageError(`--${flag} must be ${expected}, got '${text}'`);
  return value;
}

function parseFlags(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (e) {
    // node:util's messages, without their stack; an unknown flag or an argument gets the list of flags.
    const code = (e as { code?: string }).code;
    if (code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && code !== 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL')
      throw new UsageError((e as Error).message.replace(/\n/g, ' '));
    const message = (e as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, '');
    const flags = Object.keys(OPTIONS)
      .map((f) => `--${f}`)
      .join(', ');
    throw new UsageError(`${message}. Valid flags: ${flags}`);
  }
}

/** Parses `argv` (without the node and script paths): the config, or the help text for --help; a mistake throws a {@link UsageError}. */
export function parseCustomBlockArgs(argv: readonly string[]): { help: string } | { config: CustomBlockConfig } {
  const values = parseFlags(argv);
  if (values.help) return { help: CUSTOM_BLOCK_HELP };
  const backend = values.backend ?? 'auto';
  if (!(BACKEND_NAMES as readonly string[]).includes(backend))
    throw new UsageError(`--backend must be one of ${BACKEND_NAMES.join(', ')}, got '${backend}'`);
  const optimizer = values.optimizer ?? 'sgd';
  if (!(CUSTOM_BLOCK_OPTIMIZERS as readonly string[]).includes(optimizer))
    throw new UsageError(`--optimizer must be one of ${CUSTOM_BLOCK_OPTIMIZERS.join(', ')}, got '${optimizer}'`);
  return {
    config: {
      backend: backend as BackendName,
      epochs: number('epochs', values.epochs, 3, (v) => v > 0 && v <= 1000, 'a number in (0, 1000]'),
      batchSize: number('batch-size', values['batch-size'], 64, (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'),
      data: values.data,
      trainLimit: number(
        'train-limit',
        values['train-limit'],
        2048,
        (v) => Number.isInteger(v) && v >= 1 && v <= 50_000,
        'an integer from 1 to 50000',
      ),
      save: values.save,
      focalGamma:
        values['focal-gamma'] === undefined ? undefined : number('focal-gamma', values['focal-gamma'], 0, (v) => v >= 0, 'a number >= 0'),
      optimizer: optimizer as CustomBlockOptimizer,
      adamLr: number('adam-lr', values['adam-lr'], 0.002, (v) => v > 0, 'a number > 0'),
      brightness: values.brightness === undefined ? undefined : number('brightness', values.brightness, 0, (v) => v > 0, 'a number > 0'),
    },
  };
}
