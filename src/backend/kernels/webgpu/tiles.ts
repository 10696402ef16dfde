/** The GEMM block every convolution kernel computes: a TILE_M x TILE_N output tile per workgroup, K in steps of TILE_K. @internal */
export const TILE_M = 64;
export const TILE_N = 64;
export const TILE_K = 16;
