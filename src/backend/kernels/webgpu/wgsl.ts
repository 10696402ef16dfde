/**
 * WGSL the library's WebGPU programs share: shape constants baked into a shader, the convolutions' GEMM tile, and
 * the exact GELU of the fused batch norm.
 * @internal
 */
import { backend_util } from '@tensorflow/tfjs-core';

/** WGSL `const` declarations, unsigned unless the value may be negative. */
export function wgslConstants(values: Record<string, number>, signed: readonly string[] = []): string {
  return Object.entries(values)
    .map(([name, v]) => {
      if (!Number.isInteger(v)) throw new Error(`wgslConstants: ${name} must be an integer, got ${v}`);
      return signed.includes(name) ? `const ${name} : i32 = ${v};` : `const ${name} : u32 = ${v}u;`;
    })
    .join('\n');
}

/** The GEMM block every convolution kernel computes: a TILE_M x TILE_N output tile per workgroup, K in steps of TILE_K. */
export const TILE_M = 64;
export const TILE_N = 64;
export const TILE_K = 16;

/**
 * Exact GELU, z · Φ(z), and its derivative Φ(z) + z · φ(z), with erf as tfjs computes it on every backend
 * (Abramowitz and Stegun 7.1.26), so the fused kernels match the unfused ops.
 */
export const GELU_WGSL = `
  fn erfApprox(a : f32) -> f32 {
    let t = 1.0 / (1.0 + ${backend_util.ERF_P} * abs(a));
    return sign(a) * (1.0 - (((((${backend_util.ERF_A5} * t + ${backend_util.ERF_A4}) * t) + ${backend_util.ERF_A3}) * t +
      ${backend_util.ERF_A2}) * t + ${backend_util.ERF_A1}) * t * exp(-abs(a) * abs(a)));
  }
  fn normalCdf(z : f32) -> f32 {
    return (erfApprox(z * ${Math.SQRT1_2}) + 1.0) * 0.5;
  }
  fn gelu(z : f32) -> f32 {
    return z * normalCdf(z);
  }
  fn geluDerivative(z : f32) -> f32 {
    return normalCdf(z) + z * (exp(z * z * -0.5) * ${1 / Math.sqrt(2 * Math.PI)});
  }
`;
