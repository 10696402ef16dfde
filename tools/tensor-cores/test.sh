#!/usr/bin/env bash
# The tests that need tensor cores (WebGPU subgroup matrices), run for real: inside a Debian trixie root whose Mesa 26
# gives lavapipe Vulkan's cooperative matrices (in-root.sh builds it once), on the WebGPU backend only.
#   1. The tensor-core convolutions against the f16-rounded cpu oracle, the device they run on, and the
#      configuration choice (a fallback to the f32 kernels fails here instead of skipping).
#   2. The golden, fused, leak and resume suites with every WebGPU convolution at float16.
# `npm test` on a machine without the root skips the first group, saying how to run it. Needs root: sudo.
set -euo pipefail
cd "$(dirname "$0")/../.."
in_root=tools/tensor-cores/in-root.sh
vitest=(node node_modules/vitest/vitest.mjs run)
[ -f node_modules/vitest/vitest.mjs ] || { echo "$0: run npm ci first" >&2; exit 2; }

echo "== tensor-core kernels on Mesa 26's lavapipe"
TFJS_DATAFLOW_BACKENDS=webgpu TFJS_DATAFLOW_REQUIRE_TENSOR_CORES=1 "$in_root" "${vitest[@]}" \
  test/backend/kernels/webgpu-tensor-cores.test.ts \
  test/backend/kernels/webgpu-subgroup-matrix.test.ts \
  test/backend/webgpu-device.test.ts

echo "== golden, fused, leak and resume suites with float16 convolutions"
TFJS_DATAFLOW_BACKENDS=webgpu TFJS_DATAFLOW_CONV_PRECISION=float16 "$in_root" "${vitest[@]}" \
  test/backend/conv-gradients.test.ts \
  test/layers/conv.test.ts \
  test/layers/conv-group.test.ts \
  test/init/whitening.test.ts \
  test/models/speedy-convnet-fused.test.ts \
  test/train/no-leaks.test.ts \
  test/train/trainer.test.ts
