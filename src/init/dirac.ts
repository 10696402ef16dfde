import * as tf from '@tensorflow/tfjs-core';
import { ConvGroup } from '../layers/conv-group.js';
import { unbiasedStd } from '../ops/discrete-action.js';

function checkKernel(weight: tf.Tensor, fn: string): [number, number, number, number] {
  if (!(weight instanceof tf.Tensor)) throw new Error(`${fn}: argument 'weight' must be a tf.Tensor, got ${typeof weight}`);
  if (weight.rank !== 4)
    throw new Error(`${fn}: argument 'weight' must be a conv kernel [kh, kw, cin, cout] of rank 4, got shape [${weight.shape.join(',')}]`);
  if (weight.dtype !== 'float32') throw new Error(`${fn}: argument 'weight' must be float32, got dtype '${weight.dtype}'`);
  return weight.shape as [number, number, number, number];
}

/**
 * `torch.nn.init.dirac_` for a channels-last kernel `[kh, kw, cin, cout]`: zeros,
 * except 1 at the spatial centre (`kh/2`, `kw/2`, floored) for output channel d
 * reading input channel d, for every d < min(cin, cout). A convolution with it
 * passes its input through (the first min(cin, cout) channels). Only `weight`'s
 * shape is used; a new tensor is returned, as `dirac_(torch.empty_like(w))`.
 */
export function diracInit(weight: tf.Tensor): tf.Tensor4D {
  const [kh, kw, cin, cout] = checkKernel(weight, 'diracInit');
  const values = new Float32Array(kh * kw * cin * cout);
  const centre = (Math.floor(kh / 2) * kw + Math.floor(kw / 2)) * cin * cout;
  for (let d = 0; d < Math.min(cin, cout); d++) values[centre + d * cout + d] = 1;
  return tf.tensor4d(values, [kh, kw, cin, cout]);
}

/** Unbiased standard deviation and mean of all elements, as `torch.std_mean(w)`. */
function stdMean(w: tf.Tensor): [tf.Scalar, tf.Scalar] {
  return [unbiasedStd(w) as tf.Scalar, tf.mean(w) as tf.Scalar];
}

/**
 * The seed's dirac init of a conv group's transition conv and state projection:
 * `scale · w + dirac(w)`, then shifted and scaled back to `w`'s original mean and
 * (unbiased) standard deviation. The result is close to an identity kernel plus a
 * little of the random init, at the init's statistics. Runs on the backend and
 * returns a new tensor; write it into a layer with `conv.weight.write(...)`.
 *
 * @param weight A channels-last kernel `[kh, kw, cin, cout]` with at least 2 elements.
 * @param scale Factor on the original weight; default 0.1, the seed's.
 */
export function diracRenormInit(weight: tf.Tensor, scale = 0.1): tf.Tensor4D {
  checkKernel(weight, 'diracRenormInit');
  if (typeof scale !== 'number' || !Number.isFinite(scale))
    throw new Error(`diracRenormInit: argument 'scale' must be a finite number, got ${String(scale)}`);
  if (weight.size < 2)
    throw new Error(
      `diracRenormInit: argument 'weight' needs at least 2 elements for a standard deviation, got shape [${weight.shape.join(',')}]`,
    );
  return tf.tidy(() => {
    const [stdPre, meanPre] = stdMean(weight);
    const mixed = tf.add(tf.mul(weight, scale), diracInit(weight));
    const [stdPost, meanPost] = stdMean(mixed);
    return tf.add(tf.mul(tf.div(tf.sub(mixed, meanPost), stdPost), stdPre), meanPre) as tf.Tensor4D;
  });
}

/**
 * The seed's per-group dirac init (in `make_net`): conv1 gets `diracRenormInit`,
 * conv2 becomes a pure dirac (identity) kernel, and the state projection gets
 * `diracRenormInit` when it is wider than conv2's output. Writes into the group's
 * weights in place; the group must be built.
 *
 * @param scale Factor on the original weights in `diracRenormInit`; default 0.1.
 */
export function initConvGroupDirac(group: ConvGroup, scale = 0.1): void {
  if (!(group instanceof ConvGroup))
    throw new Error(
      `initConvGroupDirac: argument 'group' must be a ConvGroup, got ${(group as object)?.constructor?.name ?? String(group)}`,
    );
  if (!group.built)
    throw new Error(`initConvGroupDirac: group '${group.name}' is not built yet; call it on an input (or build the model) first`);
  const write = (variable: { read(): tf.Tensor; write(v: tf.Tensor): unknown }, make: (w: tf.Tensor) => tf.Tensor) => {
    const next = make(variable.read());
    variable.write(next);
    next.dispose();
  };
  write(group.conv1.weight, (w) => diracRenormInit(w, scale));
  write(group.conv2.weight, diracInit);
  const sp = group.stateProject;
  if (sp && sp.filters > group.conv2.filters) write(sp.weight, (w) => diracRenormInit(w, scale));
}
