/** The seed's per-epoch table: `| epoch | train_loss | ... |`, each value right-aligned under its header. */

/** The table's columns, in the seed's order. */
export const TABLE_COLUMNS = ['epoch', 'train_loss', 'val_loss', 'train_acc', 'val_acc', 'ema_val_acc', 'total_time_seconds'] as const;
/** One of {@link TABLE_COLUMNS}. */
export type TableColumn = (typeof TABLE_COLUMNS)[number];
/** A row's values by column; a missing or null value prints as blank. */
export type TableRow = Partial<Record<TableColumn, number | null>>;

// hlb-CIFAR10's print_training_details separators (the seed copy lost their runs of spaces).
const LEFT = '|  ';
const RIGHT = '  ';
const END = '|';

function line(cells: string[]): string {
  return cells.map((c) => LEFT + c + RIGHT).join('') + END;
}

/** The header block: a bar, the column names, a bar (as the seed prints before each run). */
export function formatTableHeader(columns: readonly string[] = TABLE_COLUMNS): string {
  const head = line([...columns]);
  const bar = '-'.repeat(head.length);
  return [bar, head, bar].join('\n');
}

/**
 * One epoch's row, formatted as the seed does: integers as they are, other numbers
 * with four decimals, missing values as blanks; `isFinal` adds the closing bar.
 */
export function formatTableRow(row: TableRow, isFinal = false, columns: readonly TableColumn[] = TABLE_COLUMNS): string {
  const cells = columns.map((name) => {
    const value = row[name];
    const text = value == null ? ' '.repeat(name.length) : Number.isInteger(value) && name === 'epoch' ? String(value) : value.toFixed(4);
    return text.padStart(name.length);
  });
  const out = line(cells);
  return isFinal ? `${out}\n${'-'.repeat(out.length)}` : out;
}
