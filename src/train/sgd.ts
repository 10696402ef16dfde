import * as tf from '@tensorflow/tfjs-core';
import { hasSGDStepKernel, sgdStep } from '../ops/optimizer-updates.js';
import { checkBoolean, checkFiniteNonNegative, checkUnitInterval, describeReceived } from '../validation.js';
import type { StageState, TrainOptimizer } from './contracts.js';
import type { LrSchedule } from './one-cycle.js';

/**
 * A named weight the optimizer can read and overwrite: a tfjs-layers `LayerVariable`
 * (`model.trainableWeights`: `.name`, `.read()`, `.write()`) or a core `tf.Variable`
 * (`.name`, itself a tensor, `.assign()`).
 */
export interface NamedWeight {
  /** The weight's variable name (unique in the process). */
  readonly name: string;
  /** tfjs-layers' scoped name without its per-process uniqueness suffix: the name a checkpoint keys the weight by. */
  readonly originalName?: string;
  /** The weight's shape. */
  readonly shape: readonly (number | null)[];
  /** Its dtype; float32 when absent. */
  readonly dtype?: string;
  /** False for a weight that does not train (left out of optimiser groups). */
  readonly trainable?: boolean;
  /** The current value (a `LayerVariable`'s). */
  read?(): tf.Tensor;
  /** Replaces the value (a `LayerVariable`'s). */
  write?(value: tf.Tensor): unknown;
  /** Replaces the value (a `tf.Variable`'s). */
  assign?(value: tf.Tensor): void;
}

/** The current value of a `NamedWeight` (not a copy: do not dispose it). */
export function readWeight(w: NamedWeight): tf.Tensor {
  if (typeof w.read === 'function') return w.read();
  if (w instanceof tf.Tensor) return w;
  throw new Error(`weight '${w.name}' has neither read() (LayerVariable) nor is it a tf.Variable`);
}

/** The name a checkpoint keys `w` by: its `originalName`, the same in another process's model of the same architecture, else its name. */
export function checkpointName(w: NamedWeight): string {
  return w.originalName ?? w.name;
}

/** Overwrites a `NamedWeight` in place on the device. */
export function writeWeight(w: NamedWeight, value: tf.Tensor): void {
  if (typeof w.write === 'function') w.write(value);
  else if (typeof w.assign === 'function') w.assign(value);
  else throw new Error(`weight '${w.name}' has neither write() (LayerVariable) nor assign() (tf.Variable)`);
}

/** One parameter group of `SGD`, like a torch `param_groups` entry with its own scheduler. */
export interface SGDGroupArgs {
  /** The weights this group updates. */
  weights: readonly NamedWeight[];
  /** Learning rate: a number, or a schedule (e.g. `OneCycle`) read before and advanced after each step. */
  lr: number | LrSchedule;
  /** Momentum factor. Default 0 (torch's default). */
  momentum?: number;
  /** Nesterov momentum (needs momentum > 0). Default false (torch's default). */
  nesterov?: boolean;
  /** Coupled L2 decay: `weightDecay * param` is added to the gradient. Default 0. */
  weightDecay?: number;
  /** A label for error messages and state export. Default `group<i>`. */
  name?: string;
}

/** Checkpointable optimizer state: momentum buffers by weight name, and each group's schedule step. */
export interface SGDState {
  /** Completed optimizer steps. */
  step: number;
  /** Each group's schedule step, in group order (null where the lr is a constant). */
  scheduleSteps: (number | null)[];
  /** Momentum buffers keyed by weight name (only weights that have received a gradient). */
  buffers: tf.NamedTensorMap;
}

interface Group {
  name: string;
  weights: NamedWeight[];
  lr: number | LrSchedule;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
}

type ResumableSchedule = LrSchedule & { readonly stepCount: number; setStep(step: number): void };

function isResumable(s: LrSchedule): s is ResumableSchedule {
  const r = s as Partial<ResumableSchedule>;
  return typeof r.stepCount === 'number' && typeof r.setStep === 'function';
}

/**
 * Stochastic gradient descent with (Nesterov) momentum and PyTorch's coupled weight
 * decay, over parameter groups that each carry their own learning rate (or schedule),
 * momentum and decay: the seed's pair of `torch.optim.SGD` optimizers (non-bias and
 * bias weights) with their `OneCycleLR` schedulers.
 *
 * @remarks
 * One step per weight, as torch 1.13 computes it: `g = grad + decay * p`, momentum
 * buffer `b = g` on its first step and `b = momentum * b + g` after, Nesterov
 * `g = g + momentum * b` (else `g = b`), then `p -= lr * g`. A weight whose gradient is
 * missing from the map is left alone (no decay, no momentum update), as torch skips a
 * parameter whose `.grad` is None; gradients for weights the optimizer does not hold
 * are ignored, as torch ignores parameters outside its groups. Momentum buffers live
 * on the backend; nothing is read back. Where the backend has the library's fused kernel
 * (WebGPU), each weight's update is that one kernel (`sgdStep`: the same float32 operations
 * in the same order, the rate read from its table on the device), elsewhere the elementwise
 * ops. After the update each group's schedule, if any, is advanced once (a schedule shared
 * by groups is advanced once).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { Linear, OneCycle, SGD, splitBiasGroups, variableGrads } from 'tfjs-dataflow';
 *
 * const input = tfl.input({ shape: [4] });
 * const model = tfl.model({ inputs: input, outputs: new Linear({ units: 2, seed: 1 }).apply(input) as tfl.SymbolicTensor });
 * const { nonBias, bias } = splitBiasGroups(model.trainableWeights);
 * const sgd = new SGD([
 *   { name: 'non-bias', weights: nonBias, lr: new OneCycle({ maxLr: 0.1, totalSteps: 100 }), momentum: 0.85, nesterov: true, weightDecay: 5e-4 },
 *   { name: 'bias', weights: bias, lr: 0.01, momentum: 0.85, nesterov: true },
 * ]);
 * const x = tf.randomNormal([8, 4]);
 * const { value, grads } = variableGrads(
 *   () => tf.sum(tf.square(model.apply(x) as tf.Tensor)) as tf.Scalar,
 *   model.trainableWeights.map((w) => w.read() as tf.Variable),
 * );
 * sgd.step(grads); // one update of every weight; then the schedule advances
 * ```
 */
export class SGD implements TrainOptimizer {
  private readonly groups: Group[];
  private readonly buffers = new Map<string, tf.Tensor>();
  private readonly byName = new Map<string, { weight: NamedWeight; group: Group }>();
  private readonly constants = new ScalarCache();
  private readonly lrTables = new Map<number, ScalarTable>();
  private steps = 0;

  constructor(groups: readonly SGDGroupArgs[]) {
    if (!Array.isArray(groups) || groups.length === 0)
      throw new Error(`SGD expects a non-empty array of parameter groups, got ${String(groups)}`);
    this.groups = groups.map((g, i) => {
      const name = g.name ?? `group${i}`;
      const { momentum = 0, nesterov = false, weightDecay = 0 } = g;
      if (!Array.isArray(g.weights)) throw new Error(`SGD group '${name}': weights must be an array, got ${String(g.weights)}`);
      // torch refuses a negative lr, momentum or weight decay; a momentum above 1 grows the buffer without bound.
      const where = `SGD group '${name}'`;
      if (typeof g.lr === 'number' ? !(Number.isFinite(g.lr) && g.lr >= 0) : typeof g.lr?.lr !== 'number') {
        throw new Error(`${where}: lr must be a finite number >= 0 or a schedule with an lr, got ${describeReceived(g.lr)}`);
      }
      checkUnitInterval(momentum, 'momentum', where);
      checkFiniteNonNegative(weightDecay, 'weightDecay', where);
      checkBoolean(nesterov, 'nesterov', where);
      if (nesterov && momentum === 0) throw new Error(`SGD group '${name}': Nesterov momentum requires momentum > 0 (as in torch)`);
      return { name, weights: [...g.weights], lr: g.lr, momentum, nesterov, weightDecay };
    });
    for (const group of this.groups) {
      for (const weight of group.weights) {
        if (typeof weight?.name !== 'string')
          throw new Error(`SGD group '${group.name}': every weight needs a string name, got ${String(weight)}`);
        const other = this.byName.get(weight.name);
        if (other)
          throw new Error(
            `SGD: weight '${weight.name}' appears in groups '${other.group.name}' and '${group.name}'; each weight may be in one group`,
          );
        this.byName.set(weight.name, { weight, group });
      }
    }
  }

  /** Completed optimizer steps. */
  get stepCount(): number {
    return this.steps;
  }

  /** The first group's learning rate for the next step (the seed's non-bias group: the rate its table reports). */
  get lr(): number {
    return groupLr(this.groups[0]!);
  }

  /** The learning rate each group will use on the next step, in group order. */
  get lrs(): number[] {
    return this.groups.map((g) => groupLr(g));
  }

  /** Names of the weights each group holds, in group order. */
  get groupWeightNames(): string[][] {
    return this.groups.map((g) => g.weights.map((w) => w.name));
  }

  /**
   * Applies one update from `grads` (gradients keyed by weight name, as
   * `tf.variableGrads` returns them), then advances each group's schedule.
   * The caller keeps ownership of `grads`.
   */
  step(grads: tf.NamedTensorMap): void {
    if (grads == null || typeof grads !== 'object')
      throw new Error(`SGD.step expects gradients keyed by weight name, got ${String(grads)}`);
    for (const [name, g] of Object.entries(grads)) {
      const held = this.byName.get(name);
      if (!held || g == null) continue;
      if (!tf.util.arraysEqual(g.shape, held.weight.shape as number[])) {
        throw new Error(`SGD.step: gradient for '${name}' has shape [${g.shape}], the weight has shape [${held.weight.shape}]`);
      }
    }
    for (const g of this.groups) groupLr(g); // a schedule past its end throws here, before any weight changes
    const fused = hasSGDStepKernel();
    tf.tidy(() => {
      this.groups.forEach((group, gi) => {
        if (fused) {
          this.fusedGroupStep(group, gi, grads);
          return;
        }
        const lr = this.lrTensor(group, gi);
        const mu = this.constants.get(group.momentum);
        const decay = group.weightDecay !== 0 ? this.constants.get(group.weightDecay) : null;
        for (const weight of group.weights) {
          const grad = grads[weight.name];
          if (grad == null) continue; // torch skips parameters without a gradient: no decay, no momentum
          const p = readWeight(weight);
          // PyTorch's coupled weight decay: decay * param joins the gradient (and so is scaled by lr and momentum).
          let d = decay ? tf.add(grad, tf.mul(p, decay)) : grad;
          if (group.momentum !== 0) {
            const old = this.buffers.get(weight.name);
            const buf = tf.keep(old ? tf.add(tf.mul(old, mu), d) : tf.clone(d));
            old?.dispose();
            this.buffers.set(weight.name, buf);
            d = group.nesterov ? tf.add(d, tf.mul(buf, mu)) : buf;
          }
          writeWeight(weight, tf.sub(p, tf.mul(d, lr)));
        }
      });
    });
    this.steps++;
    const advanced = new Set<LrSchedule>();
    for (const group of this.groups) {
      if (typeof group.lr !== 'number' && !advanced.has(group.lr)) {
        advanced.add(group.lr);
        group.lr.step();
      }
    }
  }

  /**
   * The group's step through the one-kernel update (`sgdStep`) of a backend that has it: the same float32
   * operations per weight as the ops above, with the learning rate read from its table on the device.
   */
  private fusedGroupStep(group: Group, gi: number, grads: tf.NamedTensorMap): void {
    const { rates, index } = this.lrRates(group, gi);
    const { momentum, nesterov, weightDecay } = group;
    for (const weight of group.weights) {
      const grad = grads[weight.name];
      if (grad == null) continue; // as above: no decay, no momentum
      const old = this.buffers.get(weight.name) ?? null;
      const next = sgdStep(readWeight(weight), grad, old, rates, { momentum, nesterov, weightDecay, lrIndex: index });
      if (next.buffer != null) {
        this.buffers.set(weight.name, tf.keep(next.buffer));
        old?.dispose();
      }
      writeWeight(weight, next.param);
    }
  }

  /** A copy of the optimizer state for checkpoints; the caller owns (and disposes) the buffers. */
  getState(): SGDState {
    const buffers: tf.NamedTensorMap = {};
    for (const [name, b] of this.buffers) buffers[name] = tf.clone(b);
    return {
      step: this.steps,
      scheduleSteps: this.groups.map((g) => (typeof g.lr === 'number' ? null : isResumable(g.lr) ? g.lr.stepCount : null)),
      buffers,
    };
  }

  /** Restores state from `getState()` (copying the buffers; the caller keeps ownership of `state`). */
  setState(state: SGDState): void {
    if (state == null || typeof state.step !== 'number' || state.buffers == null) {
      throw new Error('SGD.setState expects {step, scheduleSteps, buffers} as returned by getState()');
    }
    if (state.scheduleSteps.length !== this.groups.length) {
      throw new Error(`SGD.setState: state has ${state.scheduleSteps.length} groups, this optimizer has ${this.groups.length}`);
    }
    for (const [name, b] of Object.entries(state.buffers)) {
      const held = this.byName.get(name);
      if (!held) throw new Error(`SGD.setState: momentum buffer '${name}' matches no weight of this optimizer`);
      if (!tf.util.arraysEqual(b.shape, held.weight.shape as number[])) {
        throw new Error(`SGD.setState: buffer '${name}' has shape [${b.shape}], the weight has shape [${held.weight.shape}]`);
      }
    }
    this.groups.forEach((g, i) => {
      const s = state.scheduleSteps[i];
      if (s == null || typeof g.lr === 'number') return;
      if (!isResumable(g.lr)) throw new Error(`SGD.setState: the schedule of group '${g.name}' cannot be moved to step ${s} (no setStep)`);
      g.lr.setStep(s);
    });
    this.disposeBuffers();
    for (const [name, b] of Object.entries(state.buffers)) this.buffers.set(name, tf.keep(tf.clone(b)));
    this.steps = state.step;
  }

  /**
   * The state for a checkpoint (the optimizer stage's, `TrainOptimizer`): JSON `{ step, scheduleSteps }` and the
   * momentum buffers as `momentum/<name>`, each weight by its `originalName` (`checkpointName`), so another process's
   * model of the same architecture reads them. Copies: the caller disposes them.
   */
  saveState(): StageState {
    const names = new Map<string, string>();
    for (const [name, { weight }] of this.byName) {
      const key = checkpointName(weight);
      const other = names.get(key);
      if (other !== undefined) throw new Error(`SGD.saveState: weights '${other}' and '${name}' share the checkpoint name '${key}'`);
      names.set(key, name);
    }
    const { step, scheduleSteps, buffers } = this.getState();
    const tensors: tf.NamedTensorMap = {};
    for (const [name, b] of Object.entries(buffers)) tensors[`momentum/${checkpointName(this.byName.get(name)!.weight)}`] = b;
    return { json: { step, scheduleSteps }, tensors };
  }

  /**
   * Puts back a `saveState()` state (the caller keeps its tensors), checking all of it first: the step counts, one
   * schedule step per group that is a step of its schedule, and every buffer naming a weight of this optimizer with
   * its shape and dtype. A refused state changes nothing.
   */
  loadState(state: StageState): void {
    const where = 'SGD.loadState';
    const json = state?.json as { step?: unknown; scheduleSteps?: unknown } | null | undefined;
    const steps = json?.scheduleSteps;
    const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
    if (
      !isCount(json?.step) ||
      !Array.isArray(steps) ||
      steps.length !== this.groups.length ||
      !steps.every((s) => s === null || isCount(s))
    ) {
      throw new Error(
        `${where}: expected { step, scheduleSteps } with ${this.groups.length} schedule steps (integers >= 0 or null), got ${JSON.stringify(json)}`,
      );
    }
    this.groups.forEach((g, i) => {
      const s = steps[i] as number | null;
      if (s == null || typeof g.lr === 'number') return;
      if (!isResumable(g.lr)) throw new Error(`${where}: the schedule of group '${g.name}' cannot be moved to step ${s} (no setStep)`);
      try {
        (g.lr as Partial<TabulableSchedule>).lrAt?.(s);
      } catch (e) {
        throw new Error(`${where}: scheduleSteps[${i}] ${s} is not a step of group '${g.name}''s schedule: ${(e as Error).message}`);
      }
    });
    const byKey = new Map([...this.byName.values()].map(({ weight }) => [checkpointName(weight), weight]));
    const buffers: tf.NamedTensorMap = {};
    for (const [key, b] of Object.entries(state.tensors ?? {})) {
      const name = key.startsWith('momentum/') ? key.slice('momentum/'.length) : null;
      const weight = name == null ? undefined : byKey.get(name);
      if (weight == null) throw new Error(`${where}: tensor '${key}' is not momentum/<name> for a weight of this optimizer`);
      if (!(b instanceof tf.Tensor) || b.isDisposed) throw new Error(`${where}: '${key}' is not a live tensor`);
      if (!tf.util.arraysEqual(b.shape, weight.shape as number[]) || b.dtype !== (weight.dtype ?? 'float32')) {
        throw new Error(`${where}: '${key}' is ${b.dtype} [${b.shape}], the weight is ${weight.dtype ?? 'float32'} [${weight.shape}]`);
      }
      buffers[weight.name] = b;
    }
    this.setState({ step: json.step, scheduleSteps: steps as (number | null)[], buffers });
  }

  /** Frees the momentum buffers and the learning-rate constants kept on the backend. */
  dispose(): void {
    this.disposeBuffers();
    this.constants.dispose();
    for (const table of this.lrTables.values()) table.dispose();
    this.lrTables.clear();
  }

  /**
   * The group's learning rate for this step as a backend scalar. A schedule that can list its
   * rates (`lrAt`, `totalSteps`, `stepCount`, as `OneCycle`) is uploaded once as a table and
   * sliced on the backend; a constant is cached; any other schedule costs one scalar upload a step.
   */
  private lrTensor(group: Group, gi: number): tf.Tensor {
    const lr = group.lr;
    if (typeof lr === 'number') return this.constants.get(lr);
    if (isTabulable(lr)) return this.lrTable(lr, gi).at(lr.stepCount);
    return tf.scalar(lr.lr);
  }

  /** Group `gi`'s schedule listed once (made on first use). */
  private lrTable(lr: TabulableSchedule, gi: number): ScalarTable {
    let table = this.lrTables.get(gi);
    if (!table) {
      table = new ScalarTable(Array.from({ length: lr.totalSteps + 1 }, (_, s) => lr.lrAt(s)));
      this.lrTables.set(gi, table);
    }
    return table;
  }

  /**
   * The group's learning rate for this step as entry `index` of a backend tensor, for `sgdStep`: a tabulable
   * schedule's whole table (nothing sliced), else `lrTensor`'s scalar.
   */
  private lrRates(group: Group, gi: number): { rates: tf.Tensor; index: number } {
    const lr = group.lr;
    if (typeof lr !== 'number' && isTabulable(lr)) return { rates: this.lrTable(lr, gi).resident(), index: lr.stepCount };
    return { rates: this.lrTensor(group, gi), index: 0 };
  }

  private disposeBuffers(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}

type TabulableSchedule = ResumableSchedule & { readonly totalSteps: number; lrAt(step: number): number };

function isTabulable(s: LrSchedule): s is TabulableSchedule {
  const t = s as Partial<TabulableSchedule>;
  return isResumable(s) && typeof t.lrAt === 'function' && Number.isInteger(t.totalSteps);
}

/**
 * @internal Scalars made once per value and backend and kept there: a `tf.scalar` made
 * every step is a host-to-device upload (a buffer write on WebGPU).
 */
export class ScalarCache {
  private readonly byKey = new Map<string, tf.Scalar>();

  get(value: number): tf.Scalar {
    const key = `${tf.getBackend()}:${value}`;
    let t = this.byKey.get(key);
    if (t == null || t.isDisposed) {
      t = tf.keep(tf.scalar(value));
      makeResident(t);
      this.byKey.set(key, t);
    }
    return t;
  }

  dispose(): void {
    for (const t of this.byKey.values()) t.dispose();
    this.byKey.clear();
  }
}

/**
 * @internal A list of per-step scalars (a learning-rate or decay schedule) uploaded once;
 * `at(i)` slices entry i on the backend, with the same float32 value `tf.scalar` would upload.
 */
export class ScalarTable {
  private readonly values: number[];
  private readonly byBackend = new Map<string, tf.Tensor1D>();

  constructor(values: number[]) {
    this.values = values;
  }

  get length(): number {
    return this.values.length;
  }

  /** Entry `i` as a scalar tensor (tracked by the caller's tidy scope). */
  at(i: number): tf.Scalar {
    if (!(Number.isInteger(i) && i >= 0 && i < this.values.length)) {
      throw new Error(`ScalarTable.at: index must be an integer in [0, ${this.values.length}), got ${i}`);
    }
    const t = this.resident();
    return tf.tidy(() => tf.reshape(tf.slice(t, [i], [1]), []) as tf.Scalar);
  }

  /** The whole table on the current backend, uploaded on first use (owned by the table: do not dispose it). */
  resident(): tf.Tensor1D {
    const backend = tf.getBackend();
    let table = this.byBackend.get(backend);
    if (table == null || table.isDisposed) {
      table = tf.keep(tf.tensor1d(this.values, 'float32'));
      makeResident(table);
      this.byBackend.set(backend, table);
    }
    return table;
  }

  dispose(): void {
    for (const t of this.byBackend.values()) t.dispose();
    this.byBackend.clear();
  }
}

/**
 * Moves a small tensor onto the GPU now. WebGPU keeps tensors under 1000 elements on the host
 * until a GPU kernel reads them and runs small ops on such tensors on the CPU, whose results
 * are then uploaded again: a kept constant should live on the device from the start.
 */
function makeResident(t: tf.Tensor): void {
  const backend = tf.backend() as unknown as { uploadToGPU?(dataId: object): void };
  if (typeof backend.uploadToGPU === 'function') backend.uploadToGPU(t.dataId);
}

function groupLr(g: Group): number {
  return typeof g.lr === 'number' ? g.lr : g.lr.lr;
}

/**
 * The seed's `init_split_parameter_dictionaries`: only trainable weights, split into
 * those whose name says they are a bias (default: `'bias'` in the name) and the rest.
 */
export function splitBiasGroups<W extends NamedWeight>(
  weights: readonly W[],
  isBias: (name: string) => boolean = (name) => name.includes('bias'),
): {
  /** The trainable weights `isBias` does not name. */
  nonBias: W[];
  /** The trainable weights it names. */
  bias: W[];
} {
  const nonBias: W[] = [];
  const bias: W[] = [];
  for (const w of weights) {
    if (w.trainable === false) continue;
    (isBias(w.name) ? bias : nonBias).push(w);
  }
  return { nonBias, bias };
}
