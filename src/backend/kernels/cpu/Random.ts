import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs-core';
import { CPU } from '../backends.js';
import { RANDOM_KERNEL } from '../names.js';
import { hostDraws, randomDtype, type RandomAttrs } from '../random-draws.js';
import type { CpuBackendLike } from '../types.js';

// The values are host memory already; makeTensorInfo stores them without a copy.
const cpuRandom: KernelFunc = ({ backend, attrs }) => {
  const a = attrs as unknown as RandomAttrs;
  return (backend as unknown as CpuBackendLike).makeTensorInfo(a.shape, randomDtype(a.distribution), hostDraws(a));
};

export const randomConfig: KernelConfig = { kernelName: RANDOM_KERNEL, backendName: CPU, kernelFunc: cpuRandom };
