import { expect, it } from 'vitest';
import { formatTableHeader, formatTableRow } from '../../src/train/table.js';

// Expected strings follow hlb-CIFAR10's print_training_details: '|  ' + cell + '  ' per column, then '|'.
it('formats the header as the seed does, between two bars', () => {
  const head = '|  epoch  |  train_loss  |  val_loss  |  train_acc  |  val_acc  |  ema_val_acc  |  total_time_seconds  |';
  expect(formatTableHeader()).toBe(['-'.repeat(head.length), head, '-'.repeat(head.length)].join('\n'));
});

it('right-aligns values under their headers: the epoch as an integer, the rest with 4 decimals, blanks for missing', () => {
  const row = formatTableRow({
    epoch: 3,
    train_loss: 1.23456,
    val_loss: 0.5,
    train_acc: 0.25,
    val_acc: 0.75,
    ema_val_acc: null,
    total_time_seconds: 12.3,
  });
  expect(row).toBe('|      3  |      1.2346  |    0.5000  |     0.2500  |   0.7500  |               |             12.3000  |');
});

it('closes the last row with a bar', () => {
  const lines = formatTableRow({ epoch: 0 }, true).split('\n');
  expect(lines).toHaveLength(2);
  expect(lines[1]).toBe('-'.repeat(lines[0]!.length));
});
