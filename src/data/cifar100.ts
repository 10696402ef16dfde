import { CIFAR10_IMAGE_BYTES, type Cifar10Split } from './cifar10.js';

/** Bytes of one record in the CIFAR-100 binary release: a coarse label byte, a fine label byte, then the image. */
export const CIFAR100_RECORD_BYTES = 2 + CIFAR10_IMAGE_BYTES;
/** The training file of the binary release (all 50000 training images). */
export const CIFAR100_TRAIN_FILES = ['train.bin'] as const;
/** The evaluation file of the binary release (10000 images). */
export const CIFAR100_EVAL_FILES = ['test.bin'] as const;
/** The class-name files of the binary release, one name a line, indexed by label. */
export const CIFAR100_LABEL_NAME_FILES = {
  /** The 20 superclasses' names. */
  coarse: 'coarse_label_names.txt',
  /** The 100 classes' names. */
  fine: 'fine_label_names.txt',
} as const;
/** Every file `loadCifar100` expects in a CIFAR-100 directory. */
export const CIFAR100_FILES = [
  ...CIFAR100_TRAIN_FILES,
  ...CIFAR100_EVAL_FILES,
  CIFAR100_LABEL_NAME_FILES.coarse,
  CIFAR100_LABEL_NAME_FILES.fine,
] as const;
/** Records in each official file. */
export const CIFAR100_RECORDS = {
  /** The training file's records. */
  'train.bin': 50_000,
  /** The evaluation file's records. */
  'test.bin': 10_000,
} as const;
/** Which of the two labels of a record a CIFAR-100 split uses: the 100 classes, or their 20 superclasses. */
export type Cifar100LabelKind = 'fine' | 'coarse';
/** Number of classes per label kind. */
export const CIFAR100_CLASS_COUNTS: Readonly<Record<Cifar100LabelKind, number>> = { fine: 100, coarse: 20 };

/** One split of CIFAR-100 on the host: a {@link Cifar10Split} whose `labels` are the chosen kind, with both kinds kept. */
export interface Cifar100Split extends Cifar10Split {
  /** Fine label 0..99 per image (the record's second byte). */
  fineLabels: Uint8Array;
  /** Coarse (superclass) label 0..19 per image (the record's first byte). */
  coarseLabels: Uint8Array;
}

/** Options for {@link parseCifar100Batch}. */
export interface ParseCifar100Options {
  /** Which label becomes `labels`; default 'fine'. */
  labels?: Cifar100LabelKind;
  /** Records the file must hold; default 50000 for train.bin and 10000 for test.bin, any whole number of records otherwise. */
  expectedRecords?: number;
}

function baseName(fileName: string): string {
  const parts = fileName.split(/[\\/]/);
  return parts[parts.length - 1]!;
}

/** @internal Checks a `labels` option. */
export function checkLabelKind(labels: unknown, where: string): Cifar100LabelKind {
  if (labels !== 'fine' && labels !== 'coarse')
    throw new Error(`${where}: labels must be 'fine' or 'coarse', got ${JSON.stringify(labels)}`);
  return labels;
}

/**
 * Parses one file of the CIFAR-100 binary release (`train.bin`, `test.bin`): records of a coarse label
 * byte, a fine label byte and 3072 pixel bytes (the R, G and B 32x32 planes), the format described on
 * the CIFAR page. The same images torchvision's `CIFAR100` reads from the pickled release.
 *
 * Validated before anything is returned: the size must be a whole number of 3074-byte records (50000
 * for train.bin, 10000 for test.bin, unless `options.expectedRecords` says otherwise), every coarse label
 * 0..19, every fine label 0..99, and each fine class always in the same superclass (a file whose two
 * label bytes are swapped, or that is not CIFAR-100, fails there). Errors name the file and the problem.
 */
export function parseCifar100Batch(bytes: Uint8Array, fileName: string, options: ParseCifar100Options = {}): Cifar100Split {
  const kind = checkLabelKind(options.labels ?? 'fine', `parseCifar100Batch(${fileName})`);
  const official = CIFAR100_RECORDS[baseName(fileName) as keyof typeof CIFAR100_RECORDS] as number | undefined;
  const expected = options.expectedRecords ?? official;
  const records = Math.floor(bytes.length / CIFAR100_RECORD_BYTES);
  const leftover = bytes.length % CIFAR100_RECORD_BYTES;
  if (leftover !== 0) {
    throw new Error(
      `${fileName}: ${bytes.length} bytes is not a whole number of ${CIFAR100_RECORD_BYTES}-byte CIFAR-100 records ` +
        `(1 coarse label byte + 1 fine label byte + ${CIFAR10_IMAGE_BYTES} pixel bytes): ${records} records and ${leftover} bytes left over; ` +
        'the file is truncated or has extra bytes',
    );
  }
  if (expected !== undefined && records !== expected) {
    throw new Error(
      `${fileName}: expected ${expected} CIFAR-100 records (${expected * CIFAR100_RECORD_BYTES} bytes), got ${records} records ` +
        `(${bytes.length} bytes); the file is ${records < expected ? 'truncated' : 'too long'}`,
    );
  }
  if (records === 0) throw new Error(`${fileName}: the file is empty; expected CIFAR-100 records of ${CIFAR100_RECORD_BYTES} bytes`);
  const images = new Uint8Array(records * CIFAR10_IMAGE_BYTES);
  const coarseLabels = new Uint8Array(records);
  const fineLabels = new Uint8Array(records);
  // Superclass of each fine class, and the first record that showed it (255: not seen yet).
  const superclass = new Uint8Array(CIFAR100_CLASS_COUNTS.fine).fill(255);
  const firstSeen = new Int32Array(CIFAR100_CLASS_COUNTS.fine);
  for (let r = 0; r < records; r++) {
    const start = r * CIFAR100_RECORD_BYTES;
    const coarse = bytes[start]!;
    const fine = bytes[start + 1]!;
    if (coarse >= CIFAR100_CLASS_COUNTS.coarse) {
      throw new Error(`${fileName}: record ${r} (byte ${start}) has coarse label ${coarse}; CIFAR-100 coarse labels are 0..19`);
    }
    if (fine >= CIFAR100_CLASS_COUNTS.fine) {
      throw new Error(`${fileName}: record ${r} (byte ${start + 1}) has fine label ${fine}; CIFAR-100 fine labels are 0..99`);
    }
    if (superclass[fine] === 255) {
      superclass[fine] = coarse;
      firstSeen[fine] = r;
    } else if (superclass[fine] !== coarse) {
      throw new Error(
        `${fileName}: record ${r} puts fine class ${fine} in superclass ${coarse}, record ${firstSeen[fine]} in superclass ` +
          `${superclass[fine]}; in CIFAR-100 each fine class has one superclass (are the coarse and fine label bytes swapped?)`,
      );
    }
    coarseLabels[r] = coarse;
    fineLabels[r] = fine;
    images.set(bytes.subarray(start + 2, start + CIFAR100_RECORD_BYTES), r * CIFAR10_IMAGE_BYTES);
  }
  return { images, labels: kind === 'fine' ? fineLabels : coarseLabels, fineLabels, coarseLabels, count: records };
}

/** The first `limit` images of a split (all of them when it has no more), labels of both kinds included. */
export function firstCifar100Images(split: Cifar100Split, limit: number): Cifar100Split {
  if (limit >= split.count) return split;
  const fineLabels = split.fineLabels.slice(0, limit);
  const coarseLabels = split.coarseLabels.slice(0, limit);
  return {
    images: split.images.slice(0, limit * CIFAR10_IMAGE_BYTES),
    labels: split.labels === split.fineLabels ? fineLabels : coarseLabels,
    fineLabels,
    coarseLabels,
    count: limit,
  };
}

/**
 * Parses `fine_label_names.txt` or `coarse_label_names.txt`: one class name a line, in label order
 * (the official files end with blank lines, which are ignored; so is a `\r` before each newline).
 * Refused unless there are exactly `count` names (100 fine, 20 coarse), none repeated.
 */
export function parseCifar100LabelNames(text: string, fileName: string, count: number): string[] {
  const names = text
    .split('\n')
    .map((line) => line.replace(/\r$/, '').trim())
    .filter((line) => line.length > 0);
  if (names.length !== count) {
    throw new Error(`${fileName}: expected ${count} class names, one a line, got ${names.length}`);
  }
  const seen = new Set<string>();
  for (const [i, name] of names.entries()) {
    if (seen.has(name)) throw new Error(`${fileName}: class name '${name}' (name ${i + 1}) is repeated`);
    seen.add(name);
  }
  return names;
}
