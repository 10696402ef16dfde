import { BatchMatMul, _FusedMatMul, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { WASM } from '../backends.js';
import { disposeAll, runWasm, transpose } from './util.js';

function lastTwoSwapped(rank: number): number[] {
  const perm = [...Array(rank).keys()];
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1]!, perm[rank - 2]!];
  return perm;
}

/** A matmul kernel whose transposed operands are transposed explicitly first, which XNNPACK runs several times faster. */
function explicitTranspose(kernelName: typeof BatchMatMul | typeof _FusedMatMul): KernelFunc {
  return ({ inputs, attrs, backend }) => {
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
    if (!transposeA && !transposeB) return runWasm(kernelName, inputs, attrs, backend);
    const a2 = transposeA ? transpose(a, lastTwoSwapped(a.shape.length), backend) : a;
    const b2 = transposeB ? transpose(b, lastTwoSwapped(b.shape.length), backend) : b;
    const out = runWasm(kernelName, { ...inputs, a: a2, b: b2 }, { ...attrs, transposeA: false, transposeB: false }, backend);
    if (a2 !== a) disposeAll(backend, a2);
    if (b2 !== b) disposeAll(backend, b2);
    return out;
  };
}

// _FusedMatMul is BatchMatMul with its bias and activation fused in: the same operands, so the same explicit transposes.
export const batchMatMulConfig: KernelConfig = { kernelName: BatchMatMul, backendName: WASM, kernelFunc: explicitTranspose(BatchMatMul) };
export const fusedMatMulConfig: KernelConfig = { kernelName: _FusedMatMul, backendName: WASM, kernelFunc: explicitTranspose(_FusedMatMul) };
