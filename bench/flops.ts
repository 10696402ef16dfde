// FLOP estimate of a step from the shapes of the conv and matmul kernels the engine runs.
import * as tf from '@tensorflow/tfjs-core';

/** FLOPs (multiply + add = 2) by kernel name, from the kernels' own input shapes. */
export interface FlopCount {
  total: number;
  byKernel: Record<string, number>;
}

type Shape = readonly number[];
const size = (s: Shape) => s.reduce((a, b) => a * b, 1);

function kernelFlops(name: string, inputs: Record<string, tf.TensorInfo>, attrs: Record<string, unknown>): number {
  switch (name) {
    case 'Conv2D':
    case 'FusedConv2D': {
      // 2 * output elements * (kh * kw * cin); the output size comes from the filter and strides.
      const [kh, kw, cin, cout] = inputs['filter']!.shape as number[];
      const x = inputs['x']!.shape;
      const info = tf.backend_util.computeConv2DInfo(
        x as [number, number, number, number],
        [kh!, kw!, cin!, cout!],
        attrs['strides'] as number,
        (attrs['dilations'] as number) ?? 1,
        attrs['pad'] as 'same',
        attrs['dimRoundingMode'] as undefined,
      );
      return 2 * size(info.outShape) * kh! * kw! * cin!;
    }
    case 'Conv2DBackpropInput': {
      const [kh, kw, cin] = inputs['filter']!.shape as number[];
      return 2 * size(inputs['dy']!.shape) * kh! * kw! * cin!;
    }
    case 'Conv2DBackpropFilter': {
      const [kh, kw, cin] = attrs['filterShape'] as number[];
      return 2 * size(inputs['dy']!.shape) * kh! * kw! * cin!;
    }
    case 'BatchMatMul':
    case '_FusedMatMul': {
      const a = inputs['a']!.shape;
      const b = inputs['b']!.shape;
      const k = attrs['transposeA'] ? a[a.length - 2]! : a[a.length - 1]!;
      const m = attrs['transposeA'] ? a[a.length - 1]! : a[a.length - 2]!;
      const n = attrs['transposeB'] ? b[b.length - 2]! : b[b.length - 1]!;
      const batch = size(a.slice(0, -2));
      return 2 * batch * m * n * k;
    }
    default:
      return 0;
  }
}

/**
 * Runs `fn` and sums the FLOPs of the conv and matmul kernels it runs through the engine
 * (forward and gradients). Elementwise, pooling and reduction kernels are not counted:
 * they are a few percent of the arithmetic, though not of the time.
 */
export function countFlops(fn: () => void): FlopCount {
  const eng = tf.engine() as unknown as {
    runKernel(name: string, inputs: Record<string, tf.TensorInfo>, attrs: Record<string, unknown>): unknown;
  };
  const original = eng.runKernel;
  const count: FlopCount = { total: 0, byKernel: {} };
  eng.runKernel = function (name, inputs, attrs) {
    const f = kernelFlops(name, inputs, attrs ?? {});
    if (f > 0) {
      count.total += f;
      count.byKernel[name] = (count.byKernel[name] ?? 0) + f;
    }
    return original.call(this, name, inputs, attrs);
  };
  try {
    fn();
  } finally {
    eng.runKernel = original;
  }
  return count;
}
