#!/usr/bin/env bash
# Device side, through ../shared/gpu/run.sh (packed with bench/run.ts and bench/tensor-cores.ts):
#   bash .gpu/run.sh bash tools/gpu/issue18-tensor-cores.sh
# Issue 18 in one call (at most 8 minutes of timeouts; pack with `../shared/gpu/pack.sh bench/run.ts bench/tensor-cores.ts`): the tensor-core convolutions against the f32 kernels on the
# seed's shapes at batch 1024 (max relative error, GPU time), then the batch-1024, base-depth-64 train step and
# eval with the f32 kernels and with tensor cores (GPU time per kernel, kernels per step), then PyTorch fp16 and
# fp32 on the same GPU. JSON and the log go to $OUT (at most 8 files come back).
# Here, on lavapipe, `TC_BATCH=2 STEP_BATCH=8 DEPTH=16 bash tools/gpu/issue18-tensor-cores.sh` runs the same
# steps at tiny sizes through tsx (APP=tsx), which checks everything but the GPU figures.
set -u
out=${OUT:-/tmp/out}
mkdir -p "$out"
exec > >(tee -a "$out/issue18-log.txt") 2>&1
tc_batch=${TC_BATCH:-1024}
batch=${STEP_BATCH:-1024}
depth=${DEPTH:-64}
if [ "${APP:-bundle}" = tsx ]; then
  bench_run="npx tsx bench/run.ts"; bench_tc="npx tsx bench/tensor-cores.ts"
else
  bench_run="node .gpu/app/bench-run.mjs"; bench_tc="node .gpu/app/bench-tensor-cores.mjs"
fi
step() { echo "== $(date +%T) $*"; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
step "tensor cores against f32 kernels, seed shapes, batch $tc_batch"
timeout "${TC_TIMEOUT:-120}" $bench_tc --batch "$tc_batch" --repeats 3 --json "$out/tensor-cores-b$tc_batch.json" | grep -v '^Warning'
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
step done
