#!/usr/bin/env python3
"""PyTorch reference benchmark of the seed network sketch: one training step and one eval forward, timed.

The training step is exactly the one tools/reference/speedy_convnet.py runs: forward, the seed's summed
label-smoothed loss, backward, both SGD optimizers, both OneCycle schedules, zero_grad, and every 5th
step the EMA (created on its first due step, then updated with copy-back). The eval step is the
live network in eval mode under no_grad: the batch is doubled with its mirror (flip TTA) and noise is
still drawn, as in the seed. Inputs are random normalised images held in memory, so data loading and
the per-epoch crop/flip are not timed (they are timed in speedy_convnet.py's epoch time).

Run from the repository root:
  /usr/bin/python3 tools/reference/bench_torch.py --batch 64 --steps 10 --warmup 3 --base-depth 64 --threads 2 \
      --json docs/reference-runs/bench_torch_b64_d64_t2.json
"""
import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from speedy_convnet import (ema_step, make_hyp, make_net, make_optimizers, sync,  # noqa: E402
                            train_step)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--steps', type=int, default=10, help='timed steps')
    p.add_argument('--warmup', type=int, default=3, help='untimed steps before timing')
    p.add_argument('--base-depth', type=int, default=64)
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    p.add_argument('--mode', choices=['sketch', 'backprop'], default='sketch')
    p.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--dtype', choices=['auto', 'float32', 'float16'], default='auto', help='auto: float16 on CUDA (the seed), float32 on CPU')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--json', default=None)
    return p.parse_args(argv)


def timed(fn, device):
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return (time.perf_counter() - start) * 1e3


def run(args):
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    torch.manual_seed(args.seed)
    device = args.device
    dtype = {'float32': torch.float32, 'float16': torch.float16}.get(args.dtype) or (
        torch.float16 if device.startswith('cuda') else torch.float32)
    n_total = args.warmup + args.steps
    hyp = make_hyp(batchsize=args.batch, base_depth=args.base_depth, train_epochs=1, ema_epochs=0, device=device)
    # Whitening is fitted on random padded images: its values do not change the cost of a step.
    pad = hyp['net']['pad_amount']
    whiten_images = F.pad(torch.randn(max(args.batch, 256), 3, 32, 32, device=device, dtype=dtype), (pad,) * 4, 'reflect')
    net = make_net(hyp, whiten_images, mode=args.mode, channels_last=args.channels_last, dtype=dtype)
    opt, opt_bias, lr_sched, lr_sched_bias = make_optimizers(net, hyp, total_train_steps=n_total)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    inputs = [torch.randn(args.batch, 3, 32, 32, device=device, dtype=dtype).contiguous(memory_format=memory_format) for _ in range(n_total)]
    targets = [F.one_hot(torch.randint(0, 10, (args.batch,), device=device), 10).to(dtype) for _ in range(n_total)]

    net_ema = None
    every = hyp['misc']['ema']['every_n_steps']
    train_ms, ema_due = [], []
    net.train()
    for step in range(n_total):
        def one_step():
            nonlocal net_ema
            train_step(net, inputs[step], targets[step], hyp, opt, opt_bias, lr_sched, lr_sched_bias)
            if (step + 1) % every == 0:
                net_ema = ema_step(net, net_ema, step + 1, n_total, hyp)
        ms = timed(one_step, device)
        if step >= args.warmup:
            train_ms.append(ms)
            ema_due.append((step + 1) % every == 0)

    net.eval()
    eval_ms = []
    with torch.no_grad():
        for step in range(n_total):
            ms = timed(lambda: net(inputs[step]), device)
            if step >= args.warmup:
                eval_ms.append(ms)

    train_median = statistics.median(train_ms)
    eval_median = statistics.median(eval_ms)
    result = {
        'impl': 'pytorch',
        'backend': 'cuda' if device.startswith('cuda') else 'cpu',
        'batch': args.batch,
        'baseDepth': args.base_depth,
        'threads': torch.get_num_threads(),
        'train': {'medianStepMs': train_median, 'imagesPerSec': args.batch / (train_median / 1e3),
                  'stepMs': train_ms, 'emaStep': ema_due},
        'eval': {'medianStepMs': eval_median, 'imagesPerSec': args.batch / (eval_median / 1e3), 'stepMs': eval_ms,
                 'note': 'images/s counts the batch as given; the flip TTA doubles it inside the forward'},
        'peakRssBytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # ru_maxrss is KiB on Linux
        'torch': torch.__version__,
        'python': platform.python_version(),
        'mode': args.mode,
        'dtype': str(dtype).replace('torch.', ''),
        'channelsLast': args.channels_last,
        'steps': args.steps,
        'warmup': args.warmup,
        'command': '/usr/bin/python3 ' + ' '.join(shlex.quote(a) for a in sys.argv),
        'loadAverage': {'before': list(load_before), 'after': list(os.getloadavg()), 'cpus': os.cpu_count()},
        'note': 'wall clock on a shared machine; a 1-minute load average above the thread count means other jobs competed',
    }
    return result


def main(argv=None):
    args = parse_args(argv)
    result = run(args)
    print(f"pytorch {result['torch']} {result['backend']} threads={result['threads']} batch={args.batch} base_depth={args.base_depth}: "
          f"train {result['train']['medianStepMs']:.1f} ms/step ({result['train']['imagesPerSec']:.1f} img/s), "
          f"eval {result['eval']['medianStepMs']:.1f} ms/step ({result['eval']['imagesPerSec']:.1f} img/s), "
          f"peak RSS {result['peakRssBytes'] / 2**20:.0f} MiB")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
        print(f'wrote {args.json}')


if __name__ == '__main__':
    main()
