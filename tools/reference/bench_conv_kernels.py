#!/usr/bin/env python3
"""PyTorch side of bench/conv-kernels.ts: the seed's 3x3 'same' convolutions at base depth 64, forward,
input gradient and filter gradient, each timed alone (best of --repeats after a warm-up call), on the CPU
or on CUDA (synchronised around each call; cuDNN autotuning on, as the seed).

Run from the repository root:
  /usr/bin/python3 tools/reference/bench_conv_kernels.py --threads 2 --json FILE
  python3 tools/reference/bench_conv_kernels.py --device cuda --dtype float32 --batch 1024 --json FILE
"""
import argparse
import json
import time

import torch

SHAPES = [(31, 24, 64), (15, 64, 64), (15, 64, 256), (7, 256, 256), (7, 256, 512), (3, 512, 512)]


def best(f, repeats, device):
    def sync():
        if device.startswith('cuda'):
            torch.cuda.synchronize()
    f()
    sync()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        f()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return min(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--repeats', type=int, default=4)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--device', default='cpu')
    p.add_argument('--dtype', choices=['float32', 'float16'], default='float32')
    p.add_argument('--json')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    # fp32 means fp32: no TF32 tensor cores (the WebGPU kernels compute in fp32).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dtype = getattr(torch, args.dtype)
    rows = []
    for side, cin, cout in SHAPES:
        x = torch.randn(args.batch, cin, side, side, device=args.device, dtype=dtype)
        dy = torch.randn(args.batch, cout, side, side, device=args.device, dtype=dtype)
        w = torch.randn(cout, cin, 3, 3, device=args.device, dtype=dtype)
        with torch.no_grad():
            forward = best(lambda: torch.conv2d(x, w, padding=1), args.repeats, args.device)
        # The same kernels autograd runs for conv2d's backward, one output at a time.
        input_grad = best(lambda: torch.ops.aten.convolution_backward(
            dy, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, False, False]), args.repeats, args.device)
        filter_grad = best(lambda: torch.ops.aten.convolution_backward(
            dy, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [False, True, False]), args.repeats, args.device)
        gflop = 2 * args.batch * side * side * cout * 9 * cin / 1e9
        rate = lambda ms: round(gflop / (ms / 1e3), 1)  # noqa: E731
        rows.append({'shape': {'batch': args.batch, 'side': side, 'cin': cin, 'cout': cout}, 'gflop': gflop,
                     'ms': {'forward': forward, 'inputGrad': input_grad, 'filterGrad': filter_grad},
                     'gflopPerSec': {'forward': rate(forward), 'inputGrad': rate(input_grad), 'filterGrad': rate(filter_grad)}})
    total = {k: sum(r['ms'][k] for r in rows) for k in ('forward', 'inputGrad', 'filterGrad')}
    gpu = torch.cuda.get_device_name() if args.device.startswith('cuda') else None
    result = {'impl': 'pytorch', 'torch': torch.__version__, 'device': args.device, 'gpu': gpu, 'dtype': args.dtype,
              'threads': torch.get_num_threads(), 'batch': args.batch,
              'repeats': args.repeats, 'rows': rows, 'totalMs': total}
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        with open(args.json, 'w') as f:
            f.write(text + '\n')


if __name__ == '__main__':
    main()
