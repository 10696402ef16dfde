import { CIFAR10_IMAGE_BYTES } from '../../src/data/cifar10.js';
import { CIFAR100_RECORD_BYTES } from '../../src/data/cifar100.js';

/**
 * `records` records in the official layout: fine label (salt + r) % 100, its superclass floor(fine / 5)
 * (a fixed fine -> coarse map, as in the real files), pixel j of record r = (salt * 7 + r * 3 + j) & 255.
 */
export function syntheticCifar100(records: number, salt = 0): Uint8Array {
  const bytes = new Uint8Array(records * CIFAR100_RECORD_BYTES);
  for (let r = 0; r < records; r++) {
    const start = r * CIFAR100_RECORD_BYTES;
    const fine = (salt + r) % 100;
    bytes[start] = Math.floor(fine / 5);
    bytes[start + 1] = fine;
    for (let j = 0; j < CIFAR10_IMAGE_BYTES; j++) bytes[start + 2 + j] = (salt * 7 + r * 3 + j) & 255;
  }
  return bytes;
}

export const FINE_NAMES = Array.from({ length: 100 }, (_, i) => `fine_${i}`);
export const COARSE_NAMES = Array.from({ length: 20 }, (_, i) => `coarse_${i}`);
// As in the official files: one name a line, blank lines at the end.
export const nameFile = (names: string[]) => new TextEncoder().encode(`${names.join('\n')}\n\n`);

/** The four files of the release at their official sizes (train.bin 153.7 MB, test.bin 30.7 MB). */
export function syntheticCifar100Files(): Record<string, Uint8Array> {
  return {
    'train.bin': syntheticCifar100(50_000, 0),
    'test.bin': syntheticCifar100(10_000, 3),
    'fine_label_names.txt': nameFile(FINE_NAMES),
    'coarse_label_names.txt': nameFile(COARSE_NAMES),
  };
}
