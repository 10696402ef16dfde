/**
 * The library's gradients in place of tfjs-core's, one file each in gradients/ (Sum, Mean, Square and Sqrt): the
 * same values with nothing written from the host. `installLibraryKernels` (./index.ts) installs them over tfjs's,
 * keeping those.
 */
import type { GradConfig } from '@tensorflow/tfjs-core';
// tfjs-core registers no gradients by itself; tfjs-layers' entry registers all of them
// (into the registry shared through globalThis), in Node and in bundlers alike. Imported here so
// tfjs's are in place, and kept as the originals, before the library's are installed.
import '@tensorflow/tfjs-layers';
import { meanGradConfig } from './gradients/Mean_grad.js';
import { sqrtGradConfig } from './gradients/Sqrt_grad.js';
import { squareGradConfig } from './gradients/Square_grad.js';
import { sumGradConfig } from './gradients/Sum_grad.js';

/** Every gradient the library installs over tfjs-core's. */
export const LIBRARY_GRADIENTS: readonly GradConfig[] = [sumGradConfig, meanGradConfig, squareGradConfig, sqrtGradConfig];
