#!/usr/bin/env bash
# The tests that need tensor cores (WebGPU subgroup matrices), run for real: inside a Debian trixie root whose Mesa 26
# gives lavapipe Vulkan's cooperative matrices (in-root.sh builds it once), on the WebGPU backend only.
#   1. The tensor-core convolutions against the f16-rounded cpu oracle, the device they run on, and the
#      configuration choice (a fallback to the f32 kernels fails here instead of skipping).
#   2. The golden, fused, leak and resume suites with every WebGPU convolution at float16 (of the Trainer's suite,
#      the checkpoint and resume tests: its other tests run the same steps for loop logic).
# The two run at once, one vitest worker each (the first is one long file), and their logs are printed in turn.
# `npm test` on a machine without the root skips the first group, saying how to run it. Needs root: sudo.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f node_modules/vitest/vitest.mjs ] || { echo "$0: run npm ci first" >&2; exit 2; }

# Runs inside the root, from the project's directory.
exec tools/tensor-cores/in-root.sh bash -c '
  set -u
  vitest() { node node_modules/vitest/vitest.mjs run --maxWorkers=1 "$@"; }
  logs=$(mktemp -d)
  ( export TFJS_DATAFLOW_BACKENDS=webgpu TFJS_DATAFLOW_REQUIRE_TENSOR_CORES=1
    vitest test/backend/kernels/webgpu-tensor-cores.test.ts test/backend/kernels/webgpu-subgroup-matrix.test.ts \
      test/backend/webgpu-device.test.ts ) >"$logs/kernels" 2>&1 &
  kernels=$!
  ( export TFJS_DATAFLOW_BACKENDS=webgpu TFJS_DATAFLOW_CONV_PRECISION=float16
    vitest test/backend/conv-gradients.test.ts test/layers/conv.test.ts test/layers/conv-group.test.ts \
      test/init/whitening.test.ts test/models/speedy-convnet-fused.test.ts test/train/no-leaks.test.ts &&
    vitest test/train/trainer.test.ts -t "Trainer checkpoints and micro-batches" ) >"$logs/suites" 2>&1 &
  suites=$!
  # wait in this shell (a $(...) subshell cannot wait for its parent'"'"'s jobs).
  kernels_result=passed suites_result=passed
  wait $kernels || kernels_result=FAILED
  echo "== tensor-core kernels on Mesa 26 lavapipe: $kernels_result"
  cat "$logs/kernels"
  wait $suites || suites_result=FAILED
  echo "== golden, fused, leak and resume suites with float16 convolutions: $suites_result"
  cat "$logs/suites"
  [ "$kernels_result" = passed ] && [ "$suites_result" = passed ]
'
