import { Mean, type KernelConfig } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { reduceLeadingAxes } from './column_sums.js';

/**
 * tfjs's Mean of a float32 tensor over every axis, or over every axis but the last, as Sum.ts's column sums divided
 * by the count in their finishing pass; other reductions go to tfjs's kernel, which transposes and reduces each
 * output in one workgroup as its Sum does.
 * @internal
 */
export const meanConfig: KernelConfig = { kernelName: Mean, backendName: WEBGPU, kernelFunc: reduceLeadingAxes('mean', Mean) };
