/** What a run reports besides progress: the seed's table rows, and curves.svg. */
import { curvesSvg, type EpochRecord, type TableRow } from '../../src/node.js';

/** An epoch as a row of the seed's table (a value not measured, such as an epoch not evaluated, left blank). */
export function tableRow(record: EpochRecord): TableRow {
  const measured = (value: number) => (Number.isFinite(value) ? value : null);
  return {
    epoch: record.epoch,
    train_loss: measured(record.trainLoss),
    val_loss: measured(record.valLoss),
    train_acc: measured(record.trainAcc),
    val_acc: measured(record.valAcc),
    ema_val_acc: record.emaValAcc,
    total_time_seconds: record.totalTimeSeconds,
  };
}

/** The EMA accuracy the seed reports, else (no EMA yet) the live net's. */
export function finalAccuracy(records: readonly EpochRecord[]): number | null {
  const last = records.at(-1);
  if (!last) return null;
  return last.emaValAcc ?? (Number.isFinite(last.valAcc) ? last.valAcc : null);
}

/** Loss and accuracy per epoch (train, val, and the EMA's val accuracy) as an SVG chart. */
export function curves(records: readonly EpochRecord[]): string {
  const x = (r: EpochRecord) => r.epoch + 1;
  return curvesSvg([
    {
      title: 'Loss',
      xLabel: 'epoch',
      series: [
        { label: 'train', points: records.map((r) => [x(r), r.trainLoss]) },
        { label: 'val', points: records.map((r) => [x(r), r.valLoss]) },
      ],
    },
    {
      title: 'Accuracy',
      xLabel: 'epoch',
      series: [
        { label: 'train', points: records.map((r) => [x(r), r.trainAcc]) },
        { label: 'val', points: records.map((r) => [x(r), r.valAcc]) },
        { label: 'val (EMA)', points: records.map((r) => [x(r), r.emaValAcc ?? Number.NaN]) },
      ],
    },
  ]);
}
