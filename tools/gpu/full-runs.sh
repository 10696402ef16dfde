#!/usr/bin/env bash
# Device side, once tools/gpu/receive-cifar10.sh has put the full CIFAR-10 release in /tmp/cifar10:
#   bash .gpu/run.sh bash tools/gpu/full-runs.sh MODE RUNS [TORCH_DTYPE]
# The seed's full configuration on WebGPU (the bundled CLI, .gpu/app/examples-cifar10-train.mjs) and with the
# PyTorch reference on the same GPU, RUNS runs each in MODE (sketch or backprop). Metrics, the first run's curves
# and the PyTorch JSON go to $OUT.
set -u
mode=${1:-sketch}
runs=${2:-5}
dtype=${3:-auto}
out=${OUT:-/tmp/out}
mkdir -p "$out"
exec > >(tee -a "$out/full-runs-$mode.log") 2>&1
echo "== $(date +%T) WebGPU, $mode, $runs runs"
node .gpu/app/examples-cifar10-train.mjs --backend webgpu --data /tmp/cifar10 --mode "$mode" --runs "$runs" --out "/tmp/run-$mode" 2>&1 \
  | grep -v '^Warning' | grep -v 'img/s'
cp "/tmp/run-$mode/metrics.json" "$out/webgpu-full-$mode-${runs}runs.metrics.json"
cp "/tmp/run-$mode/run-1/curves.svg" "$out/webgpu-full-$mode-run1.curves.svg" 2>/dev/null || cp "/tmp/run-$mode/curves.svg" "$out/webgpu-full-$mode-run1.curves.svg"
echo "== $(date +%T) PyTorch ($dtype), $mode, $runs runs"
python3 tools/reference/speedy_convnet.py --data /tmp/cifar10 --device cuda --dtype "$dtype" --mode "$mode" --runs "$runs" \
  --json "$out/torch-full-$mode-$dtype-${runs}runs.json" | tail -n 3
echo "== $(date +%T) done"
