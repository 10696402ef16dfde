#!/usr/bin/env bash
# Device side, through ../shared/gpu/run.sh (which sets up Node, the Vulkan loader and .gpu/app):
#   bash .gpu/run.sh bash tools/gpu/step-bench.sh
# The batch-1024, base-depth-64 SpeedyConvNet step on WebGPU with the library's kernels and with tfjs's own,
# each with a GPU kernel profile; the seed's conv shapes kernel by kernel; PyTorch on the same GPU.
# Results go to $OUT (at most 8 files come back), the log to $OUT/log.txt.
set -u
out=${OUT:-/tmp/out}
mkdir -p "$out"
exec > >(tee -a "$out/log.txt") 2>&1
[ -d .gpu/cifar10-parts ] && bash tools/gpu/receive-cifar10.sh || true
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
app=.gpu/app
step() { echo "== $(date +%T) $*"; }
step "WebGPU, library kernels"
timeout 180 node $app/bench-run.mjs --backend webgpu --batch 1024 --base-depth 64 --steps 5 --warmup 2 --profile 2 --json "$out/bench-webgpu-b1024-library.json" | grep -v '^Warning'
step "WebGPU, tfjs kernels (before)"
timeout 150 node $app/bench-run.mjs --backend webgpu --batch 1024 --base-depth 64 --steps 3 --warmup 1 --profile 1 --tfjs-kernels --json "$out/bench-webgpu-b1024-tfjs.json" | grep -v '^Warning'
step "PyTorch fp16 (the seed's dtype)"
timeout 90 python3 tools/reference/bench_torch.py --device cuda --batch 1024 --base-depth 64 --steps 20 --warmup 5 --json "$out/bench-torch-cuda-fp16-b1024.json"
step "conv kernels, WebGPU"
timeout 120 node $app/bench-conv-kernels.mjs --backend webgpu --batch 1024 --repeats 3 --json "$out/conv-kernels-webgpu-b1024.json" | tail -n 4
step "PyTorch fp32"
timeout 90 python3 tools/reference/bench_torch.py --device cuda --dtype float32 --batch 1024 --base-depth 64 --steps 20 --warmup 5 --json "$out/bench-torch-cuda-fp32-b1024.json"
step "PyTorch conv kernels fp32"
timeout 60 python3 tools/reference/bench_conv_kernels.py --device cuda --dtype float32 --batch 1024 --repeats 5 --json "$out/conv-kernels-torch-cuda-fp32-b1024.json" | tail -n 3
step done
