#!/usr/bin/env python3
"""Golden fixtures for the sketch's ops (test/fixtures/ops/*.json).

Reproduces, in PyTorch, the seed's `simulate_discrete_action` (`x.detach() + noise_std_mul *
x.std() * torch.randn_like(x)`, with the noise fed in so tfjs can use the same) and its
`FastGlobalMaxPooling` (`torch.amax(x, dim=(2, 3))`), on small fixed inputs, and records
outputs and the gradients of a weighted sum of the output.

Run:  /usr/bin/python3 tools/reference/ops_fixtures.py [--out test/fixtures/ops] [--seed 0]

Layout: everything is written channels-last, as the TypeScript ops use it; the conversion
from PyTorch's NCHW happens only in fixture_io's `nhwc`.
"""
import argparse

import torch

from fixture_io import enc, nhwc
from fixture_io import write as write_fixture
from speedy_convnet import FastGlobalMaxPooling

ARGS = None
GENERATOR = 'tools/reference/ops_fixtures.py'


def write(name, payload):
    write_fixture(ARGS.out, name, payload, generator=GENERATOR)


def simulate_discrete_action(x, noise, noise_std_mul=1., detach_std=False):
    # The seed's SpeedyConvNet.simulate_discrete_action with randn_like(x) replaced by `noise`;
    # detach_std is the named variant, not the seed.
    std = x.std().detach() if detach_std else x.std()
    return x.detach() + noise_std_mul * std * noise


def discrete_action_fixtures():
    cases = []
    for i, (shape, noise_std, detach_std) in enumerate([
        ((2, 3, 4, 4), 1.0, False),  # the seed's default
        ((2, 3, 4, 4), 0.37, False),
        ((3, 2, 3, 5), 1.0, True),
        ((4, 7), 2.5, False),  # any rank: the std is over the whole tensor
    ]):
        g = torch.Generator().manual_seed(ARGS.seed + 100 + i)
        x = (torch.randn(shape, generator=g) * 1.7 + 0.3).requires_grad_(True)
        noise = torch.randn(shape, generator=g)
        w = torch.randn(shape, generator=g)
        y = simulate_discrete_action(x, noise, noise_std, detach_std)
        if y.requires_grad:  # with detach_std nothing in y leads back to x
            (w * y).sum().backward()
        grad = x.grad if x.grad is not None else torch.zeros_like(x)
        conv = nhwc if len(shape) == 4 else (lambda t: t.detach())
        cases.append({
            'noiseStd': noise_std,
            'detachStd': detach_std,
            'x': enc(conv(x)),
            'noise': enc(conv(noise)),
            'w': enc(conv(w)),
            'std': float('%.9g' % x.std().item()),
            'y': enc(conv(y)),
            'gradReachesX': x.grad is not None,
            'grad': enc(conv(grad)),
        })
    write('discrete_action.json', {
        'what': 'y = simulate_discrete_action(x) with fed-in noise; grad = d sum(w * y) / dx (only through x.std())',
        'cases': cases,
    })


def global_max_pool_fixtures():
    cases = []
    g = torch.Generator().manual_seed(ARGS.seed + 200)
    x = torch.randn(2, 3, 4, 5, generator=g)
    tied = torch.randn(2, 3, 4, 4, generator=g)
    # Ties at the maximum: torch.amax splits the gradient evenly among them.
    tied[0, 0, 1, 1] = tied[0, 0, 2, 3] = tied[0, 0].max() + 1.0
    tied[1, 2] = 0.5  # a constant channel: 16-way tie
    tied[0, 1, 0, 0] = tied[0, 1, 3, 3] = tied[0, 1, 1, 2] = tied[0, 1].max() + 0.25
    for name, t in (('random', x), ('ties', tied)):
        t = t.clone().requires_grad_(True)
        y = FastGlobalMaxPooling()(t)  # the seed's module: torch.amax(x, dim=(2, 3))
        w = torch.randn(y.shape, generator=g)
        (w * y).sum().backward()
        cases.append({'name': name, 'x': enc(nhwc(t)), 'w': enc(w), 'y': enc(y), 'grad': enc(nhwc(t.grad))})
    write('global_max_pool.json', {
        'what': 'y = torch.amax(x, dim=(2, 3)) (NCHW; stored NHWC); grad = d sum(w * y) / dx',
        'cases': cases,
    })


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='test/fixtures/ops')
    parser.add_argument('--seed', type=int, default=0)
    ARGS = parser.parse_args()
    torch.set_default_dtype(torch.float32)
    discrete_action_fixtures()
    global_max_pool_fixtures()


if __name__ == '__main__':
    main()
