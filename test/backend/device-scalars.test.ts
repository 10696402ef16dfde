import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { deviceScalar, deviceScalarCount, releaseDeviceScalars } from '../../src/backend/device-scalars.js';
import { describeEachBackend } from '../helpers/backends.js';
import { KernelCounter } from '../../src/backend/counter.js';

describeEachBackend('deviceScalar', (backend) => {
  it('makes one scalar per value and dtype, keeps it through tidy, and hands the same one back', async () => {
    releaseDeviceScalars();
    const half = tf.tidy(() => deviceScalar(0.5));
    expect(half.isDisposed).toBe(false);
    expect(half.shape).toEqual([]);
    expect(half.dtype).toBe('float32');
    expect(await half.data()).toEqual(new Float32Array([0.5]));
    expect(tf.tidy(() => deviceScalar(0.5))).toBe(half);
    // Keyed by the float32 value: a double that rounds to the same float32 shares it.
    expect(deviceScalar(Math.fround(0.1))).toBe(deviceScalar(0.1));
    const three = deviceScalar(3, 'int32');
    expect(three.dtype).toBe('int32');
    expect(three).not.toBe(deviceScalar(3));
    expect(deviceScalarCount()).toBe(4); // 0.5, 0.1, int32 3, float32 3
    // -0 is not 0: 1 / -0 is -Infinity.
    expect(deviceScalar(-0)).not.toBe(deviceScalar(0));
    const quotient = tf.div(deviceScalar(1), deviceScalar(-0));
    expect((await quotient.data())[0]).toBe(-Infinity);
    quotient.dispose();
  });

  it('writes nothing to the backend once made, where a JS number would be written on every call', async () => {
    // Above tfjs-webgpu's CPU hand-off size (128 elements), where small ops run on the host and write their result.
    const x = tf.ones([32, 32]);
    tf.mul(x, deviceScalar(0.25)).dispose();
    const cached = await new KernelCounter().measure(() => tf.mul(x, deviceScalar(0.25)).dispose());
    const literal = await new KernelCounter().measure(() => tf.mul(x, 0.25).dispose());
    if (backend !== 'cpu') {
      expect(cached.uploadBytes).toBe(0);
      expect(literal.uploadBytes).toBe(4);
    }
    expect(cached.kernels).toBe(1);
    x.dispose();
  });

  it('frees every scalar on release, and makes a released one again on its next use', async () => {
    releaseDeviceScalars();
    const before = tf.memory().numTensors;
    const a = deviceScalar(7.5);
    deviceScalar(8.5);
    expect(tf.memory().numTensors).toBe(before + 2);
    expect(deviceScalarCount()).toBe(2);
    expect(releaseDeviceScalars()).toBe(2);
    expect(a.isDisposed).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    const again = deviceScalar(7.5);
    expect(again).not.toBe(a);
    expect(await again.data()).toEqual(new Float32Array([7.5]));
    releaseDeviceScalars();
  });

  it('refuses NaN, a non-number, and a fraction for int32', () => {
    expect(() => deviceScalar(Number.NaN)).toThrow(/must be a number \(not NaN\), got NaN/);
    expect(() => deviceScalar('1' as never)).toThrow(/must be a number/);
    expect(() => deviceScalar(0.5, 'int32')).toThrow(/int32 scalar needs an integer value, got 0.5/);
  });
});
