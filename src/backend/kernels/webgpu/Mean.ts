import { Mean, type KernelConfig } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { reduceLeadingAxes } from './column_sums.js';

/**
 * tfjs's Mean of a float32 tensor over every axis, or over every axis but the last, as Sum.ts's column sums divided
 * by the count in their finishing pass; other reductions go to tfjs's kernel. tfjs-backend-webgpu 4.22's Mean is
 * its Sum's reduction (transpose, then one workgroup per output; Sum.ts says what that costs).
 * @internal
 */
export const meanConfig: KernelConfig = { kernelName: Mean, backendName: WEBGPU, kernelFunc: reduceLeadingAxes('mean', Mean) };
