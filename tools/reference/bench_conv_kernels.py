#!/usr/bin/env python3
"""PyTorch side of bench/conv-kernels.ts: the seed's 3x3 'same' convolutions at base depth 64, forward,
input gradient and filter gradient, each timed alone (best of --repeats after a warm-up call), on the CPU.

Run from the repository root:
  /usr/bin/python3 tools/reference/bench_conv_kernels.py --threads 2 --json FILE
"""
import argparse
import json
import time

import torch

SHAPES = [(31, 24, 64), (15, 64, 64), (15, 64, 256), (7, 256, 256), (7, 256, 512), (3, 512, 512)]


def best(f, repeats):
    f()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append((time.perf_counter() - t0) * 1e3)
    return min(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--repeats', type=int, default=4)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--json')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for side, cin, cout in SHAPES:
        x = torch.randn(args.batch, cin, side, side)
        dy = torch.randn(args.batch, cout, side, side)
        w = torch.randn(cout, cin, 3, 3)
        with torch.no_grad():
            forward = best(lambda: torch.conv2d(x, w, padding=1), args.repeats)
        # The same kernels autograd runs for conv2d's backward, one output at a time.
        input_grad = best(lambda: torch.ops.aten.convolution_backward(
            dy, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, False, False]), args.repeats)
        filter_grad = best(lambda: torch.ops.aten.convolution_backward(
            dy, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [False, True, False]), args.repeats)
        gflop = 2 * args.batch * side * side * cout * 9 * cin / 1e9
        rate = lambda ms: round(gflop / (ms / 1e3), 1)  # noqa: E731
        rows.append({'shape': {'batch': args.batch, 'side': side, 'cin': cin, 'cout': cout}, 'gflop': gflop,
                     'ms': {'forward': forward, 'inputGrad': input_grad, 'filterGrad': filter_grad},
                     'gflopPerSec': {'forward': rate(forward), 'inputGrad': rate(input_grad), 'filterGrad': rate(filter_grad)}})
    total = {k: sum(r['ms'][k] for r in rows) for k in ('forward', 'inputGrad', 'filterGrad')}
    result = {'impl': 'pytorch', 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'batch': args.batch,
              'repeats': args.repeats, 'rows': rows, 'totalMs': total}
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        with open(args.json, 'w') as f:
            f.write(text + '\n')


if __name__ == '__main__':
    main()
