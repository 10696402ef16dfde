import { Sum, type KernelConfig } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { reduceLeadingAxes } from './column_sums.js';

/**
 * tfjs's Sum of a float32 tensor over every axis, or over every axis but the last (a bias's gradient), as the
 * two-pass column sums (column_sums.ts); other reductions go to tfjs's kernel. tfjs-backend-webgpu 4.22
 * transposes the input for the latter and reduces each output in a single workgroup: 11 ms for one
 * [1024,15,15,64] sum on an H200.
 * @internal
 */
export const sumConfig: KernelConfig = { kernelName: Sum, backendName: WEBGPU, kernelFunc: reduceLeadingAxes('sum', Sum) };
