// The tensor-core (subgroup-matrix) variants of the WebGPU convolution kernels on Dawn's Null backend, which
// compiles and validates shaders but runs nothing. The device is told NVIDIA's configuration (f16 operands,
// 16x16x16, f32 results, subgroups of 32), since the Null adapter reports none. Every variant for the seed's
// shapes and the awkward ones must compile through tfjs-backend-webgpu's own shader assembly, with no
// warning (deprecated builtins included), and create its compute pipeline without a validation error.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installWebGPUTrainingKernels } from '../../../src/backend/kernels/webgpu/index.js';
import { Conv2DForwardProgram } from '../../../src/backend/kernels/webgpu/Conv2D.js';
import { Conv2DFilterGradProgram } from '../../../src/backend/kernels/webgpu/Conv2DBackpropFilter.js';
import { Conv2DInputGradProgram } from '../../../src/backend/kernels/webgpu/Conv2DBackpropInput.js';
import type { ConvGemmProgram } from '../../../src/backend/kernels/webgpu/conv_gemm.js';
import {
  pickTensorCoreConfig,
  registerSubgroupMatrixDevice,
  setWebGPUConvPrecision,
  SUBGROUP_MATRIX_FEATURE,
  tensorCoreConfigFor,
  type SubgroupMatrixDevice,
  type TensorCoreConfig,
} from '../../../src/backend/kernels/webgpu/conv_precision.js';
import { hoistDirectiveLines, subgroupBlocks, withHoistedDirectives } from '../../../src/backend/kernels/webgpu/subgroup_matrix.js';
import type { WebGPUBackendLike } from '../../../src/backend/kernels/types.js';
import { withDawnToggle } from '../../../src/backend/node.js';

/** What Dawn reports on NVIDIA (Vulkan cooperative matrices): f16 16x16x16 with f32 and with f16 results, subgroups of 32. */
const NVIDIA_OFFER: SubgroupMatrixDevice = {
  configs: [
    { componentType: 'f16', resultComponentType: 'f16', M: 16, N: 16, K: 16 },
    { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 },
  ],
  subgroupMinSize: 32,
  subgroupMaxSize: 32,
};

type Pad = 'same' | 'valid';
interface Case {
  name: string;
  x: [number, number, number, number];
  k: [number, number];
  cout: number;
  stride: number;
  pad: Pad;
}

// The seed's 3x3 convolutions at base depth 64 (bench/conv-kernels.ts's CONV_SHAPES) and its whitening conv.
const SEED: Array<[number, number, number]> = [
  [31, 24, 64],
  [15, 64, 64],
  [15, 64, 256],
  [7, 256, 256],
  [7, 256, 512],
  [3, 512, 512],
];
const CASES: Case[] = [
  ...[1024, 2].flatMap((batch) => [
    ...SEED.map(
      ([side, cin, cout]): Case => ({
        name: `seed ${side}x${side}x${cin}->${cout}, batch ${batch}`,
        x: [batch, side, side, cin],
        k: [3, 3],
        cout,
        stride: 1,
        pad: 'same',
      }),
    ),
    { name: `seed whitening 2x2 valid, batch ${batch}`, x: [batch, 32, 32, 3], k: [2, 2], cout: 24, stride: 1, pad: 'valid' } as Case,
  ]),
  { name: 'odd sizes', x: [3, 9, 7, 5], k: [3, 3], cout: 6, stride: 1, pad: 'same' },
  { name: 'stride 2, same', x: [2, 10, 9, 3], k: [3, 3], cout: 4, stride: 2, pad: 'same' },
  { name: 'stride 2, valid', x: [4, 17, 17, 3], k: [3, 3], cout: 5, stride: 2, pad: 'valid' },
  { name: '1x1', x: [2, 6, 6, 8], k: [1, 1], cout: 12, stride: 1, pad: 'valid' },
  { name: '5x5', x: [2, 8, 8, 3], k: [5, 5], cout: 7, stride: 1, pad: 'same' },
  { name: '3x2 kernel', x: [2, 7, 6, 4], k: [3, 2], cout: 4, stride: 1, pad: 'valid' },
];

function convInfo(c: Case): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(c.x, [...c.k, c.x[3], c.cout], c.stride, 1, c.pad);
}

const PROGRAMS: Record<string, (info: tf.backend_util.Conv2DInfo, tc: TensorCoreConfig) => ConvGemmProgram> = {
  Conv2D: (info, tc) => new Conv2DForwardProgram(info, tc),
  Conv2DBackpropInput: (info, tc) => new Conv2DInputGradProgram(info, tc),
  Conv2DBackpropFilter: (info, tc) => new Conv2DFilterGradProgram(info, tc),
};

let device: GPUDevice;
/** The recording createShaderModule: the kernels' scoped hoisting must leave it in place (no patch outlives a program). */
let recordingCreate: GPUDevice['createShaderModule'];
const compiled: Array<{ label: string; code: string; messages: string[]; done: Promise<void> }> = [];
const uncaptured: string[] = [];

/** Creates a device on Dawn's Null adapter with the subgroup-matrix feature, the tfjs backend on it, and records every shader module. */
async function nullBackend(): Promise<string | undefined> {
  let dawn: { create(flags: string[]): GPU; globals: Record<string, unknown> };
  try {
    dawn = (await import('webgpu')) as never;
  } catch (e) {
    return `the webgpu package (Dawn) does not load: ${(e as Error).message.split('\n')[0]}`;
  }
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create(['backend=null', 'enable-dawn-features=allow_unsafe_apis']);
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  const adapter = await gpu.requestAdapter();
  if (adapter == null) return "Dawn's Null backend gives no adapter";
  const needed = [SUBGROUP_MATRIX_FEATURE, 'shader-f16', 'subgroups'];
  const missing = needed.filter((f) => !adapter.features.has(f));
  if (missing.length) return `Dawn's Null adapter lacks ${missing.join(', ')}`;
  device = await adapter.requestDevice({ requiredFeatures: needed as GPUFeatureName[] });
  device.addEventListener('uncapturederror', (e) => uncaptured.push((e as GPUUncapturedErrorEvent).error.message));
  // Recorded beneath the kernels' scoped hoisting (withHoistedDirectives), so the code is what Dawn compiles.
  const create = device.createShaderModule.bind(device);
  device.createShaderModule = (d: GPUShaderModuleDescriptor) => {
    const module = create(d);
    const messages: string[] = [];
    const done = module.getCompilationInfo().then((info) => {
      messages.push(...info.messages.map((m) => `${m.type}: ${m.message}`));
    });
    compiled.push({ label: d.label ?? '', code: d.code, messages, done });
    return module;
  };
  recordingCreate = device.createShaderModule;
  registerSubgroupMatrixDevice(device, NVIDIA_OFFER);
  const webgpu = await import('@tensorflow/tfjs-backend-webgpu');
  tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => new webgpu.WebGPUBackend(device, adapter.info), 10);
  installWebGPUTrainingKernels();
  await tf.setBackend('webgpu');
  return undefined;
}

const unavailable = await nullBackend().catch((e: Error) => `Dawn's Null backend failed to start: ${e.message}`);
const describeNull = unavailable ? describe.skip : describe;

/** Waits for the submitted work and for the compilation messages of every module made so far. */
async function settle(): Promise<void> {
  await device.queue.onSubmittedWorkDone();
  await Promise.all(compiled.map((m) => m.done));
}

describe('tensor-core configuration choice', () => {
  it('takes the f16 -> f32 configuration from the offer, and says why when none fits', () => {
    expect(pickTensorCoreConfig(NVIDIA_OFFER)).toEqual({ M: 16, N: 16, K: 16, subgroupSize: 32 });
    expect(pickTensorCoreConfig({ ...NVIDIA_OFFER, configs: [] })).toMatch(/reports no subgroup-matrix configuration/);
    expect(pickTensorCoreConfig({ ...NVIDIA_OFFER, subgroupMinSize: 8 })).toMatch(/subgroup size is not fixed \(8 to 32\)/);
    expect(pickTensorCoreConfig({ ...NVIDIA_OFFER, configs: [NVIDIA_OFFER.configs[0]!] })).toMatch(/offered: f16->f16 16x16x16/);
  });

  it('prefers the largest configuration that tiles the block', () => {
    const offer: SubgroupMatrixDevice = {
      configs: [
        { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 8, K: 8 },
        { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 },
        // Does not divide the 64x64x16 block: never chosen.
        { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 32 },
        { componentType: 'f32', resultComponentType: 'f32', M: 32, N: 32, K: 16 },
      ],
      subgroupMinSize: 32,
      subgroupMaxSize: 32,
    };
    expect(pickTensorCoreConfig(offer)).toEqual({ M: 16, N: 16, K: 16, subgroupSize: 32 });
    // Mesa 26's lavapipe: 8x8x8 on subgroups of 8; each of 32 subgroups owns two result matrices side by side.
    const lavapipe: SubgroupMatrixDevice = {
      configs: [
        { componentType: 'f16', resultComponentType: 'f16', M: 8, N: 8, K: 8 },
        { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 8, K: 8 },
        { componentType: 'u8', resultComponentType: 'u32', M: 8, N: 8, K: 8 },
        { componentType: 'i8', resultComponentType: 'i32', M: 8, N: 8, K: 8 },
      ],
      subgroupMinSize: 8,
      subgroupMaxSize: 8,
    };
    expect(pickTensorCoreConfig(lavapipe)).toEqual({ M: 8, N: 8, K: 8, subgroupSize: 8 });
    expect(subgroupBlocks({ M: 8, N: 8, K: 8, subgroupSize: 8 })).toEqual({ rows: 1, cols: 2, across: 4 });
    // A subgroup size that does not divide the workgroup is refused, saying why.
    expect(pickTensorCoreConfig({ ...lavapipe, subgroupMinSize: 48, subgroupMaxSize: 48 })).toMatch(/one size that divides 256/);
    // Apple's 8x8x8 on subgroups of 32: each of 8 subgroups owns 8 result matrices, a row of them.
    expect(subgroupBlocks({ M: 8, N: 8, K: 8, subgroupSize: 32 })).toEqual({ rows: 1, cols: 8, across: 1 });
    expect(subgroupBlocks({ M: 16, N: 16, K: 16, subgroupSize: 32 })).toEqual({ rows: 1, cols: 2, across: 2 });
  });

  it("adds Dawn's allow_unsafe_apis toggle to the flags once, beside toggles already there", () => {
    expect(withDawnToggle([], 'allow_unsafe_apis')).toEqual(['enable-dawn-features=allow_unsafe_apis']);
    expect(withDawnToggle(['backend=vulkan', 'enable-dawn-features=a'], 'allow_unsafe_apis')).toEqual([
      'backend=vulkan',
      'enable-dawn-features=a,allow_unsafe_apis',
    ]);
    expect(withDawnToggle(['enable-dawn-features=allow_unsafe_apis'], 'allow_unsafe_apis')).toEqual([
      'enable-dawn-features=allow_unsafe_apis',
    ]);
  });

  it('hoists global directives to the front of tfjs-assembled code, once each', () => {
    const code =
      'struct A { x : f32 };\n  enable f16;\nfn f() {}\nenable f16;\n enable chromium_experimental_subgroup_matrix;\n' +
      '  diagnostic(off, chromium.subgroup_matrix_uniformity);\n';
    const out = hoistDirectiveLines(code);
    expect(
      out.startsWith('enable f16;\nenable chromium_experimental_subgroup_matrix;\ndiagnostic(off, chromium.subgroup_matrix_uniformity);\n'),
    ).toBe(true);
    expect(out.match(/enable/g)).toHaveLength(2);
    expect(out).toContain('struct A { x : f32 };');
    expect(hoistDirectiveLines('fn f() {}')).toBe('fn f() {}');
  });
});

describeNull(`subgroup-matrix conv kernels on Dawn's Null backend${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  beforeAll(() => setWebGPUConvPrecision('float16'));
  afterAll(() => setWebGPUConvPrecision('float32'));

  const config = pickTensorCoreConfig(NVIDIA_OFFER) as TensorCoreConfig;

  for (const c of CASES) {
    for (const [kernel, make] of Object.entries(PROGRAMS)) {
      it(`${kernel}: ${c.name} compiles and creates its pipeline`, async () => {
        const program = make(convInfo(c), config);
        expect(program.workgroupSize).toEqual([256, 1, 1]);
        const before = compiled.length;
        // The WGSL depends on the output's rank only (shapes are constants in the program), so a one-element
        // output of the same rank keeps the Null device from allocating batch-1024 buffers; nothing runs.
        (program as { outputShape: number[] }).outputShape = [1, 1, 1];
        const inputs = [tf.zeros([1, 1, 1, 4]), tf.zeros([1, 1, 1, 4])];
        device.pushErrorScope('validation');
        device.pushErrorScope('internal');
        const out = withHoistedDirectives(device, () =>
          (tf.backend() as unknown as WebGPUBackendLike).runWebGPUProgram(program, inputs, 'float32'),
        );
        const internal = await device.popErrorScope();
        const validation = await device.popErrorScope();
        await settle();
        tf.backend().disposeData(out.dataId);
        tf.dispose(inputs);
        expect(validation?.message).toBeUndefined();
        expect(internal?.message).toBeUndefined();
        const mine = compiled.slice(before).filter((m) => m.code.includes('subgroupMatrixMultiplyAccumulate'));
        expect(mine).toHaveLength(1);
        expect(mine[0]!.code.trimStart().startsWith('enable f16;\nenable chromium_experimental_subgroup_matrix;')).toBe(true);
        expect(mine[0]!.messages).toEqual([]);
        expect(uncaptured).toEqual([]);
      });
    }
  }

  it('the kernels pick the tensor-core programs through tf ops, and the f32 ones with precision float32', async () => {
    expect(tensorCoreConfigFor(device)).toEqual(config);
    const run = async () => {
      const before = compiled.length;
      const x = tf.ones([2, 6, 6, 8]) as tf.Tensor4D;
      const w = tf.ones([3, 3, 8, 12]) as tf.Tensor4D;
      device.pushErrorScope('validation');
      const outs = tf.tidy(() => {
        const y = tf.conv2d(x, w, 1, 'same');
        const dx = tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: y, filter: w }, {
          inputShape: x.shape,
          strides: 1,
          pad: 'same',
          dataFormat: 'NHWC',
          dimRoundingMode: undefined,
        } as never) as tf.Tensor;
        const dw = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy: y }, {
          filterShape: w.shape,
          strides: 1,
          pad: 'same',
          dataFormat: 'NHWC',
          dimRoundingMode: undefined,
        } as never) as tf.Tensor;
        return [y, dx, dw];
      });
      const error = await device.popErrorScope();
      await settle();
      tf.dispose([x, w, ...outs]);
      expect(error?.message).toBeUndefined();
      return compiled.slice(before).map((m) => m.label);
    };
    setWebGPUConvPrecision('float16');
    const withTensorCores = compiled.length;
    await run();
    const tcCode = compiled.slice(withTensorCores).filter((m) => /^Conv2D\w+Program$/.test(m.label));
    expect(tcCode.map((m) => m.label).sort()).toEqual(['Conv2DFilterGradProgram', 'Conv2DForwardProgram', 'Conv2DInputGradProgram']);
    expect(tcCode.every((m) => m.code.includes('subgroupMatrixMultiplyAccumulate') && m.messages.length === 0)).toBe(true);
    setWebGPUConvPrecision('float32');
    const withF32 = compiled.length;
    await run();
    const f32Code = compiled.slice(withF32).filter((m) => /^Conv2D\w+Program$/.test(m.label));
    expect(f32Code).toHaveLength(3);
    expect(f32Code.some((m) => m.code.includes('subgroup'))).toBe(false);
    expect(tensorCoreConfigFor(device)).toBe("precision is 'float32'");
    expect(device.createShaderModule).toBe(recordingCreate);
    expect(uncaptured).toEqual([]);
  });

  it('rejects an unknown precision, saying what it expected', () => {
    expect(() => setWebGPUConvPrecision('half' as never)).toThrow(/expected one of 'float32', 'float16', got "half"/);
  });
});
