"""What the golden-fixture scripts share: tensor encoding, layout conversion and writing.

The `*_fixtures.py` scripts here import it (they run as scripts, so this folder is on sys.path).
Each fixture records the script and arguments that made it, in one of the two headers the
fixtures already carry: `generator_fields` (layers, ops) or `source_fields` (train, data).
"""
import json
import os
import sys

import torch


def enc(t):
    """A tensor as {shape, data}, float32 values exact in 9 significant digits."""
    t = t.detach().double().cpu()
    return {'shape': list(t.shape), 'data': [float('%.9g' % v) for v in t.reshape(-1).tolist()]}


# The layout conversions from PyTorch to tfjs, the one place the fixture scripts convert.

def nhwc(t):
    # PyTorch activations are NCHW, tfjs's NHWC.
    return t.detach().permute(0, 2, 3, 1).contiguous()


def hwio(w):
    # PyTorch conv weights are [cout, cin, kh, kw], tfjs's [kh, kw, cin, cout].
    return w.detach().permute(2, 3, 1, 0).contiguous()


def linear_w(w):
    # PyTorch Linear weights are [out, in], the TypeScript Linear's (a dense kernel's) [in, out].
    return w.detach().t().contiguous()


def to_tfjs(t):
    """Any weight in tfjs layout: conv kernels by `hwio`, linear weights by `linear_w`, vectors unchanged."""
    if t.dim() == 4:
        return hwio(t)
    if t.dim() == 2:
        return linear_w(t)
    return t


def generator_fields(generator):
    """The header of the layers and ops fixtures: script, its arguments as one string, torch version."""
    return {'generator': generator, 'args': ' '.join(sys.argv[1:]) or '(defaults)', 'torch': torch.__version__}


def source_fields(generator):
    """The `source` header of the train and data fixtures: script, its argument list, torch version."""
    return {'script': generator, 'args': sys.argv[1:], 'torch': torch.__version__}


def write(directory, name, payload, generator=None):
    """Writes payload as compact JSON to directory/name, headed by `generator_fields(generator)` when a
    generator is given (otherwise the payload carries its own header)."""
    if generator is not None:
        payload = {**generator_fields(generator), **payload}
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, 'w') as f:
        json.dump(payload, f, separators=(',', ':'))
    print(f'wrote {path} ({os.path.getsize(path)} bytes)')
