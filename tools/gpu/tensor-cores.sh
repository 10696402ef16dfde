#!/usr/bin/env bash
# Device side, through ../shared/gpu/run.sh:
#   bash .gpu/run.sh bash tools/gpu/tensor-cores.sh
# Pack with
#   GPU_DATA=10000,2000 ../shared/gpu/pack.sh bench/run.ts bench/tensor-cores.ts examples/cifar10/train.ts
# (the data and the CLI bundle only for the last part). First, in seconds: the adapter's features and
# subgroup-matrix configurations and the device's features, then the tensor-core convolutions on the seed's shapes
# at batch 1024 against their f16-rounded oracle (the f32 kernel on the same rounded operands) within the bound of
# test/helpers/f16.ts; the script stops there (exit 1) if float16 did not reach the device (initBackend asks Dawn
# for allow_unsafe_apis and vulkan_enable_f16_on_nvidia), so that no later figure measures the f32 kernels by
# mistake (ALLOW_F32=1 goes on with the f32 figures). Then the batch-1024, base-depth-64 train step and eval with the
# f32 kernels and with tensor cores (GPU time per kernel, timestamp quantization off, kernels per step), PyTorch
# fp16 and fp32 on the same GPU, and last the accuracy: 10,000 training / 2,000 test images, 3 epochs, the seed's
# batch and depth, through the CIFAR-10 CLI with --conv-precision float32 and float16. Each accuracy run's timeout
# is ACC_TIMEOUT (default 120 s) or its share of what is left of BUDGET (default 570 s, under a device command's 10
# minutes) since the script started, whichever is less; a run with under 30 s left is skipped. JSON, metrics and the
# log go to $OUT (8 files: the 6 of the benches and the log, and the two runs' metrics.json).
# On a machine without a GPU, `APP=tsx TC_BATCH=2 STEP_BATCH=8 DEPTH=16 ACC_TRAIN=64 ACC_EVAL=64 ACC_DEPTH=4
# ACC_BATCH=32 ACC_EPOCHS=1 CIFAR10_DIR=../shared/data/cifar10 bash tools/gpu/tensor-cores.sh` runs the same steps
# at tiny sizes through tsx (inside tools/tensor-cores/in-root.sh, on Mesa 26's lavapipe with subgroup matrices),
# which checks everything but the GPU figures.
set -u
out=${OUT:-/tmp/out}
mkdir -p "$out"
exec > >(tee -a "$out/tensor-cores-log.txt") 2>&1
tc_batch=${TC_BATCH:-1024}
batch=${STEP_BATCH:-1024}
depth=${DEPTH:-64}
if [ "${APP:-bundle}" = tsx ]; then
  bench_run="npx tsx bench/run.ts"; bench_tc="npx tsx bench/tensor-cores.ts"; cifar10_train="npx tsx examples/cifar10/train.ts"
else
  bench_run="node .gpu/app/bench-run.mjs"; bench_tc="node .gpu/app/bench-tensor-cores.mjs"
  cifar10_train="node .gpu/app/examples-cifar10-train.mjs"
fi
step() { echo "== $(date +%T) $*"; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
step "first check: features, configurations, tensor cores against their f16-rounded oracle, seed shapes, batch $tc_batch"
require=--require-tensor-cores
[ "${ALLOW_F32:-0}" = 1 ] && require=
set -o pipefail
if ! timeout "${TC_TIMEOUT:-120}" $bench_tc --batch "$tc_batch" --repeats 3 $require --json "$out/tensor-cores-b$tc_batch.json" | grep -v '^Warning'; then
  step "stopped: float16 did not reach the device (or the check failed); ALLOW_F32=1 measures the f32 kernels only"
  exit 1
fi
set +o pipefail
for precision in float32 float16; do
  step "train step and eval, batch $batch, depth $depth, convolutions $precision"
  timeout "${STEP_TIMEOUT:-150}" $bench_run --backend webgpu --batch "$batch" --base-depth "$depth" --steps 5 --warmup 2 --profile 2 \
    --conv-precision "$precision" --json "$out/bench-webgpu-b$batch-$precision.json" | grep -v '^Warning'
done
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  for dtype in float16 float32; do
    step "PyTorch $dtype, same GPU"
    timeout 60 python3 tools/reference/bench_torch.py --device cuda --dtype "$dtype" --batch "$batch" --base-depth "$depth" \
      --steps 20 --warmup 5 --json "$out/bench-torch-cuda-$dtype-b$batch.json" | tail -n 2
  done
else
  step "PyTorch with CUDA not available here: skipped"
fi
data=${CIFAR10_DIR:-/tmp/cifar10}
acc_train=${ACC_TRAIN:-10000}
acc_eval=${ACC_EVAL:-2000}
if [ -f "$data/data_batch_1.bin" ] && [ -f "$data/test_batch.bin" ]; then
  remaining=2
  for precision in float32 float16; do
    share=$(((${BUDGET:-570} - SECONDS) / remaining))
    remaining=$((remaining - 1))
    limit=$((share < ${ACC_TIMEOUT:-120} ? share : ${ACC_TIMEOUT:-120}))
    if [ "$limit" -lt 30 ]; then
      step "accuracy, convolutions $precision: skipped, ${limit} s left of the budget"
      continue
    fi
    step "accuracy: $acc_train training / $acc_eval test images, ${ACC_EPOCHS:-3} epochs, convolutions $precision (timeout $limit s)"
    rm -rf "/tmp/run-acc-$precision"
    timeout "$limit" $cifar10_train --backend webgpu --conv-precision "$precision" --data "$data" \
      --train-limit "$acc_train" --eval-limit "$acc_eval" --epochs "${ACC_EPOCHS:-3}" --batch-size "${ACC_BATCH:-1024}" \
      --base-depth "${ACC_DEPTH:-64}" --seed 0 --out "/tmp/run-acc-$precision" 2>&1 | grep -v '^Warning' | grep -v 'img/s'
    cp "/tmp/run-acc-$precision/metrics.json" "$out/cifar10-acc-$precision.metrics.json" 2>/dev/null \
      || echo "no metrics.json from the $precision run"
  done
else
  step "accuracy runs skipped: no CIFAR-10 binaries in $data (pack with GPU_DATA=10000,2000)"
fi
step done
