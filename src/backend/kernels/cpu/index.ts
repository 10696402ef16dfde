import type { KernelConfig } from '@tensorflow/tfjs-core';
import { decodeImagesConfig } from './DecodeImages.js';
import { randomConfig } from './Random.js';

/** The library's own cpu kernels (the backend's are not replaced: it is the reference). */
export const CPU_LIBRARY_KERNELS: readonly KernelConfig[] = [randomConfig, decodeImagesConfig];
