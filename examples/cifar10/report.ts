/** What a run reports besides progress: the seed's table rows, and curves.svg. */
import { OneCycle, curvesSvg, type EpochRecord, type Hyp, type TableRow } from '../../src/node.js';

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

/** Most points of the learning-rate curve: one per step up to this, evenly spaced steps beyond. */
const MAX_LR_POINTS = 500;

/**
 * The learning rate of every step of a run (the non-bias group's, as StepInfo.lr and EpochRecord.lr), as [epoch, lr]
 * points, step s of an epoch of n steps at `epoch + s / n`: the seed's OneCycle (the CLI trains with the seed's
 * optimiser stage), made from `hyp.opt` for the trainer's `epochSteps` and `totalSteps`.
 */
export function lrCurve(hyp: Hyp, epochSteps: readonly number[], totalSteps: number): Array<[number, number]> {
  const { opt } = hyp;
  const schedule = new OneCycle({
    maxLr: opt.nonBiasLr,
    totalSteps,
    pctStart: opt.percentStart,
    divFactor: opt.initialDivFactor,
    finalDivFactor: 1 / (opt.initialDivFactor * opt.finalLrRatio),
    anneal: 'linear',
  });
  const stride = Math.max(1, Math.ceil(totalSteps / MAX_LR_POINTS));
  const points: Array<[number, number]> = [];
  let step = 0;
  epochSteps.forEach((n, epoch) => {
    for (let s = 1; s <= n; s++) {
      step++;
      // The step's rate is the schedule's before it steps: lrAt(step - 1).
      if (step % stride === 0 || s === n || step === 1) points.push([epoch + s / n, schedule.lrAt(step - 1)]);
    }
  });
  return points;
}

/** Loss and accuracy per epoch (train, val, and the EMA's val accuracy), and the learning rate per step when given, as an SVG chart. */
export function curves(records: readonly EpochRecord[], lr?: ReadonlyArray<[number, number]>): string {
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
    {
      title: 'Learning rate',
      xLabel: 'epoch',
      series: [
        lr
          ? { label: 'OneCycle, non-bias group', points: [...lr], markers: false }
          : // Without the schedule, the rate each epoch's last step used.
            { label: "each epoch's last step", points: records.map((r) => [x(r), r.lr]) },
      ],
    },
  ]);
}
