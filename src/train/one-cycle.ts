/** Anything that hands an optimizer its current learning rate and can be advanced one step. */
export interface LrSchedule {
  /** The learning rate for the coming optimizer step. */
  readonly lr: number;
  /** Advances to the next step. */
  step(): void;
}

/** How `OneCycle` moves between its start and end rates inside a phase. */
export type AnnealStrategy = 'linear' | 'cos';

/** Arguments of `OneCycle`, named after torch's `OneCycleLR` parameters. */
export interface OneCycleArgs {
  /** Peak learning rate, reached at the end of the warm-up phase. */
  maxLr: number;
  /** Number of optimizer steps in the cycle (torch's `total_steps`): a positive integer. */
  totalSteps: number;
  /** Fraction of the cycle spent warming up, in [0, 1]. Default 0.3 (torch's default). */
  pctStart?: number;
  /** 'linear' or 'cos' annealing inside each phase. Default 'cos' (torch's default). */
  anneal?: AnnealStrategy;
  /** The start rate is `maxLr / divFactor`. Default 25 (torch's default). */
  divFactor?: number;
  /** The end rate is `maxLr / divFactor / finalDivFactor`. Default 1e4 (torch's default). */
  finalDivFactor?: number;
}

interface Phase {
  endStep: number;
  startLr: number;
  endLr: number;
}

/**
 * The one-cycle learning-rate policy with exactly the arithmetic of PyTorch 1.13's
 * `OneCycleLR` (two phases, `three_phase=False`, `cycle_momentum=False`), which the
 * seed uses for both its optimizers: warm up from `maxLr / divFactor` to `maxLr`
 * over `pctStart * totalSteps - 1` steps, then anneal to `maxLr / divFactor / finalDivFactor`
 * at step `totalSteps - 1`.
 *
 * @remarks
 * `lrAt(step)` is the pure form; `lr` / `step()` is the stepping form (a fresh schedule
 * sits at step 0, like torch's scheduler right after construction). Like torch, step
 * `totalSteps` is still valid (it extrapolates one step past the end rate) and anything
 * beyond throws. The seed's schedule is `OneCycle.seed(maxLr, totalSteps)`: linear,
 * `pctStart` 0.23, `divFactor` 1e16 and `finalDivFactor = 1 / (1e16 * 0.07)`, so it
 * starts at ~0 and ends at 0.07 x `maxLr` (the end rate is computed from the start rate,
 * a torch quirk the seed leans on).
 *
 * @example
 * ```ts
 * import { OneCycle } from 'tfjs-dataflow';
 *
 * const schedule = new OneCycle({ maxLr: 0.1, totalSteps: 100, pctStart: 0.25, anneal: 'linear' });
 * schedule.lrAt(0); // 0.004: maxLr / divFactor
 * schedule.lrAt(24); // 0.1 at the end of the warm-up
 * schedule.step(); // schedule.lr is now lrAt(1)
 * ```
 */
export class OneCycle implements LrSchedule {
  /** Peak learning rate. */
  readonly maxLr: number;
  /** Optimizer steps in the cycle. */
  readonly totalSteps: number;
  /** Fraction of the cycle spent warming up. */
  readonly pctStart: number;
  /** How the rate moves inside each phase. */
  readonly anneal: AnnealStrategy;
  /** The start rate is `maxLr / divFactor`. */
  readonly divFactor: number;
  /** The end rate is `maxLr / divFactor / finalDivFactor`. */
  readonly finalDivFactor: number;
  /** `maxLr / divFactor`, the rate at step 0. */
  readonly initialLr: number;
  /** `initialLr / finalDivFactor`, the rate at step `totalSteps - 1`. */
  readonly minLr: number;
  private readonly phases: Phase[];
  private current = 0;

  constructor(args: OneCycleArgs) {
    const { maxLr, totalSteps, pctStart = 0.3, anneal = 'cos', divFactor = 25, finalDivFactor = 1e4 } = args;
    // A negative peak makes every step ascend the loss (torch's optimizers refuse a negative lr).
    if (!(typeof maxLr === 'number' && Number.isFinite(maxLr) && maxLr >= 0))
      throw new Error(`OneCycle: maxLr must be a finite number >= 0, got ${String(maxLr)}`);
    if (!Number.isInteger(totalSteps) || totalSteps <= 0) {
      throw new Error(`OneCycle: totalSteps must be a positive integer, got ${totalSteps}`);
    }
    if (!(pctStart >= 0 && pctStart <= 1)) throw new Error(`OneCycle: pctStart must be a fraction in [0, 1], got ${pctStart}`);
    if (anneal !== 'linear' && anneal !== 'cos') throw new Error(`OneCycle: anneal must be 'linear' or 'cos', got '${String(anneal)}'`);
    for (const [name, v] of [
      ['divFactor', divFactor],
      ['finalDivFactor', finalDivFactor],
    ] as const) {
      if (!(typeof v === 'number' && Number.isFinite(v) && v > 0))
        throw new Error(`OneCycle: ${name} must be a positive finite number, got ${String(v)}`);
    }
    // A divisor so small that maxLr / divFactor / finalDivFactor overflows makes every annealed rate NaN.
    if (!Number.isFinite(maxLr / divFactor) || !Number.isFinite(maxLr / divFactor / finalDivFactor)) {
      throw new Error(
        `OneCycle: maxLr ${maxLr} / divFactor ${divFactor} / finalDivFactor ${finalDivFactor} is not finite: the divisors must not vanish`,
      );
    }
    this.maxLr = maxLr;
    this.totalSteps = totalSteps;
    this.pctStart = pctStart;
    this.anneal = anneal;
    this.divFactor = divFactor;
    this.finalDivFactor = finalDivFactor;
    // Same operation order as torch, so every step agrees to the last bit or two.
    this.initialLr = maxLr / divFactor;
    this.minLr = this.initialLr / finalDivFactor;
    this.phases = [
      { endStep: pctStart * totalSteps - 1, startLr: this.initialLr, endLr: maxLr },
      { endStep: totalSteps - 1, startLr: maxLr, endLr: this.minLr },
    ];
  }

  /** The seed's schedule: linear, pctStart 0.23, from ~0 (div 1e16) to 0.07 x `maxLr`. */
  static seed(maxLr: number, totalSteps: number): OneCycle {
    const initialDivFactor = 1e16;
    const finalLrRatio = 0.07;
    return new OneCycle({
      maxLr,
      totalSteps,
      pctStart: 0.23,
      anneal: 'linear',
      divFactor: initialDivFactor,
      finalDivFactor: 1 / (initialDivFactor * finalLrRatio),
    });
  }

  /** The learning rate at `step` (0-based optimizer step), as torch's `get_lr` computes it. */
  lrAt(step: number): number {
    if (!Number.isInteger(step) || step < 0) throw new Error(`OneCycle.lrAt: step must be a non-negative integer, got ${step}`);
    if (step > this.totalSteps) {
      throw new Error(`OneCycle: tried to step ${step + 1} times. The specified number of total steps is ${this.totalSteps}`);
    }
    let startStep = 0;
    for (let i = 0; i < this.phases.length; i++) {
      const phase = this.phases[i]!;
      if (step <= phase.endStep || i === this.phases.length - 1) {
        const span = phase.endStep - startStep;
        if (span === 0) {
          throw new Error(
            `OneCycle: phase ${i + 1} has zero length (pctStart ${this.pctStart} x totalSteps ${this.totalSteps}); torch divides by zero here`,
          );
        }
        const pct = (step - startStep) / span;
        return this.anneal === 'cos' ? annealCos(phase.startLr, phase.endLr, pct) : annealLinear(phase.startLr, phase.endLr, pct);
      }
      startStep = phase.endStep;
    }
    throw new Error('unreachable');
  }

  /** The current step (torch's `last_epoch`): how many times `step()` has been called. */
  get stepCount(): number {
    return this.current;
  }

  /** The learning rate for the coming optimizer step. */
  get lr(): number {
    return this.lrAt(this.current);
  }

  /** Advances one step; throws, leaving the schedule unchanged, when that would pass `totalSteps`. */
  step(): void {
    this.lrAt(this.current + 1);
    this.current++;
  }

  /** Moves to `step` directly, e.g. when resuming from a checkpoint. */
  setStep(step: number): void {
    this.lrAt(step);
    this.current = step;
  }
}

function annealCos(start: number, end: number, pct: number): number {
  const cosOut = Math.cos(Math.PI * pct) + 1;
  return end + ((start - end) / 2.0) * cosOut;
}

function annealLinear(start: number, end: number, pct: number): number {
  return (end - start) * pct + start;
}
