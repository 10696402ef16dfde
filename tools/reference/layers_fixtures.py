#!/usr/bin/env python3
"""Golden fixtures for the layers and initialisation (test/fixtures/layers/*.json).

Reproduces, in PyTorch, the seed's GELU, Conv, Linear, BatchNorm, ConvGroup, whitening
fit (get_patches / get_whitening_parameters / init_whitening_conv / set_whitening_conv)
and dirac init, on small fixed inputs, and records outputs and gradients.

Run:  /usr/bin/python3 tools/reference/layers_fixtures.py [--out test/fixtures/layers] [--seed 0]

Layouts: everything is written channels-last, as the TypeScript layers use it. The
conversions from PyTorch's layouts happen only in fixture_io's `nhwc`, `hwio` and `linear_w`.
"""
import argparse
import math

import torch
import torch.nn.functional as F

from fixture_io import enc, hwio, linear_w, nhwc
from fixture_io import write as write_fixture
# The seed's modules and whitening helpers, from the repaired seed (importing it runs nothing).
from speedy_convnet import BatchNorm, Conv, ConvGroup, Linear, get_patches, get_whitening_parameters

ARGS = None
GENERATOR = 'tools/reference/layers_fixtures.py'


def write(name, payload):
    write_fixture(ARGS.out, name, payload, generator=GENERATOR)


def whitening_parameters_and_covariance(patches):
    """The seed's get_whitening_parameters, plus the covariance it computes internally (recorded too)."""
    n = patches.shape[0]
    eigenvalues, eigenvectors = get_whitening_parameters(patches)
    return eigenvalues, eigenvectors, torch.cov(patches.view(n, -1).t())


def canonical(vectors):
    """Flips each eigenvector (a row) so its largest-magnitude component is positive."""
    flat = vectors.reshape(vectors.shape[0], -1)
    idx = flat.abs().argmax(dim=1)
    signs = torch.sign(flat[torch.arange(flat.shape[0]), idx])
    return vectors * signs.view(-1, *([1] * (vectors.dim() - 1)))


def whitening_weight(eigenvalues, eigenvectors, eps=1e-2):
    """set_whitening_conv's kernel for every eigenvector (no slicing, no layer): the kernel and its negation."""
    kernel = eigenvectors / torch.sqrt(eigenvalues + eps)
    return torch.cat((kernel, -kernel), dim=0)


def grads_of(outputs_and_g, params):
    loss = sum((o * g).sum() for o, g in outputs_and_g)
    return torch.autograd.grad(loss, params)


# --- fixtures ---------------------------------------------------------------------------

def fixture_gelu():
    x = torch.cat([torch.linspace(-6, 6, 49), torch.randn(31) * 2]).requires_grad_(True)
    g = torch.randn_like(x)
    y = F.gelu(x)
    (dx,) = torch.autograd.grad((y * g).sum(), [x])
    write('gelu.json', {'x': enc(x), 'g': enc(g), 'y': enc(y), 'dx': enc(dx)})


def fixture_conv():
    cases = []
    specs = [
        dict(name='3x3 same', cin=3, cout=4, kw={}, temperature=None, lr_mult=None, hw=5),
        dict(name='3x3 same, temperature 0.5, lrMult 2', cin=2, cout=3, kw={}, temperature=0.5, lr_mult=2.0, hw=4),
        dict(name='2x2 valid', cin=3, cout=5, kw={'kernel_size': 2, 'padding': 0}, temperature=None, lr_mult=None, hw=5),
    ]
    for s in specs:
        conv = Conv(s['cin'], s['cout'], temperature=s['temperature'], lr_mult=s['lr_mult'], **s['kw'])
        with torch.no_grad():
            conv.weight.copy_(torch.randn_like(conv.weight) * 0.3)
        x = torch.randn(2, s['cin'], s['hw'], s['hw'], requires_grad=True)
        y = conv(x)
        g = torch.randn_like(y)
        dx, dw = grads_of([(y, g)], [x, conv.weight])
        cases.append({
            'name': s['name'], 'filters': s['cout'], 'kernelSize': conv.kernel_size[0],
            'padding': 'valid' if s['kw'].get('padding') == 0 else 'same',
            'temperature': s['temperature'], 'lrMult': s['lr_mult'],
            'weight': enc(hwio(conv.weight)), 'x': enc(nhwc(x)), 'g': enc(nhwc(g)),
            'y': enc(nhwc(y)), 'dx': enc(nhwc(dx)), 'dw': enc(hwio(dw)),
        })
    write('conv.json', {'cases': cases})


def fixture_linear():
    lin = Linear(8, 5, bias=False, temperature=1. / 12)
    with torch.no_grad():
        lin.weight.copy_(torch.randn_like(lin.weight))
    x = torch.randn(3, 8, requires_grad=True)
    y = lin(x)
    g = torch.randn_like(y)
    dx, dw = grads_of([(y, g)], [x, lin.weight])
    write('linear.json', {
        'temperature': 1. / 12, 'units': 5,
        'weight': enc(linear_w(lin.weight)), 'x': enc(x), 'g': enc(g),
        'y': enc(y), 'dx': enc(dx), 'dw': enc(linear_w(dw)),
    })


def fixture_batchnorm():
    cases = []
    for name, weight_trainable, weight in [('frozen scale', False, None), ('trainable scale', True, [1.5, 0.5, -0.75])]:
        bn = BatchNorm(3, weight=weight_trainable)
        with torch.no_grad():
            bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
            if weight is not None:
                bn.weight.copy_(torch.tensor(weight))
        bn.train()
        x1 = (torch.randn(4, 3, 3, 2) * 2 + 1).requires_grad_(True)
        x2 = (torch.randn(4, 3, 3, 2) * 0.5 - 1).requires_grad_(True)
        y1 = bn(x1)
        g = torch.randn_like(y1)
        params = [x1, bn.bias] + ([bn.weight] if weight_trainable else [])
        grads = grads_of([(y1, g)], params)
        rm1, rv1 = bn.running_mean.clone(), bn.running_var.clone()
        y2 = bn(x2)
        rm2, rv2 = bn.running_mean.clone(), bn.running_var.clone()
        bn.eval()
        x3 = torch.randn(2, 3, 3, 2, requires_grad=True)
        y3 = bn(x3)
        g3 = torch.randn_like(y3)
        dx3, db3 = grads_of([(y3, g3)], [x3, bn.bias])
        case = {
            'name': name, 'weightTrainable': weight_trainable,
            'weight': enc(bn.weight), 'bias': enc(bn.bias),
            'x1': enc(nhwc(x1)), 'g': enc(nhwc(g)), 'y1': enc(nhwc(y1)),
            'dx1': enc(nhwc(grads[0])), 'dbias1': enc(grads[1]),
            'runningMean1': enc(rm1), 'runningVar1': enc(rv1),
            'x2': enc(nhwc(x2)), 'y2': enc(nhwc(y2)), 'runningMean2': enc(rm2), 'runningVar2': enc(rv2),
            'x3': enc(nhwc(x3)), 'g3': enc(nhwc(g3)), 'y3': enc(nhwc(y3)), 'dx3': enc(nhwc(dx3)), 'dbias3': enc(db3),
        }
        if weight_trainable:
            case['dweight1'] = enc(grads[2])
        cases.append(case)
    write('batchnorm.json', {'eps': 1e-12, 'momentum': 0.4, 'cases': cases})


def fixture_conv_group():
    group = ConvGroup(3, 4, 6)
    with torch.no_grad():
        for conv in [group.conv1, group.conv2, group.state_project]:
            conv.weight.copy_(torch.randn_like(conv.weight) * 0.4)
        for i, norm in enumerate([group.norm1, group.norm2, group.state_norm]):
            norm.bias.copy_(torch.randn_like(norm.bias) * 0.2)
    group.train()
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    out, state = group(x)
    g1, g2 = torch.randn_like(out), torch.randn_like(state)
    names = ['conv1.weight', 'conv2.weight', 'state_project.weight', 'norm1.bias', 'norm2.bias', 'state_norm.bias']
    params = dict(group.named_parameters())
    grads = grads_of([(out, g1), (state, g2)], [x] + [params[n] for n in names])
    group.eval()
    x_eval = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        out_eval, state_eval = group(x_eval)

    def conv_or_vec(name, t):
        return enc(hwio(t)) if t.dim() == 4 else enc(t)

    state_dict = {k: conv_or_vec(k, v) for k, v in group.state_dict().items() if v.dtype == torch.float32}
    write('conv_group.json', {
        'channelsIn': 3, 'channelsOut': 4, 'statePredDim': 6,
        'initial': {
            **{n: conv_or_vec(n, params[n]) for n in names},
        },
        'x': enc(nhwc(x)), 'g1': enc(nhwc(g1)), 'g2': enc(nhwc(g2)),
        'out': enc(nhwc(out)), 'state': enc(nhwc(state)),
        'dx': enc(nhwc(grads[0])),
        'grads': {n: conv_or_vec(n, t) for n, t in zip(names, grads[1:])},
        'stateDictAfterTraining': state_dict,
        'xEval': enc(nhwc(x_eval)), 'outEval': enc(nhwc(out_eval)), 'stateEval': enc(nhwc(state_eval)),
    })


def fixture_whitening():
    n, chunk = 12, 4
    # Redraw until every chunk's eigenvalues are well separated (relative gap >= 12%), so the
    # eigenvectors are well conditioned and float32 covariances on the TypeScript side agree to 1e-4.
    for attempt in range(1000):
        images, perm, chunks = draw_whitening_case(n, chunk)
        if min(c['minRelGap'] for c in chunks) >= 0.12:
            break
    fixture_whitening_write(n, chunk, images, perm, chunks, attempt)


def draw_whitening_case(n, chunk):
    base = torch.randn(n, 3, 6, 6)
    # Correlated pixels and channels, so the covariance has structure.
    mix = torch.tensor([[1.0, 0.5, 0.2], [0.3, 1.0, 0.4], [0.1, 0.6, 1.0]])
    images = torch.einsum('dc,nchw->ndhw', mix, base + 0.6 * torch.roll(base, 1, dims=3) + 0.3 * torch.roll(base, 1, dims=2))
    perm = torch.randperm(n)
    shuffled = images.index_select(0, perm)
    chunks = []
    for data_split in shuffled.split(chunk, dim=0):
        # float64 on the reference side: the TypeScript side's eigh runs in float64 on the host.
        vals, vecs, cov = whitening_parameters_and_covariance(get_patches(data_split.double(), patch_shape=(2, 2), dtype=torch.float64))
        v = vals.view(-1)
        gap = ((v[:-1] - v[1:]) / v[:-1]).min().item()
        chunks.append({'eigenvalues': vals.view(-1), 'eigenvectors': vecs.reshape(12, 12), 'cov': cov, 'minRelGap': gap})
    return images, perm, chunks


def fixture_whitening_write(n, chunk, images, perm, chunks, attempt):
    def weight_from(eigenvalues, eigenvectors):
        return hwio(whitening_weight(eigenvalues.view(-1, 1, 1, 1), eigenvectors.reshape(12, 3, 2, 2)).float())

    vals = torch.stack([c['eigenvalues'] for c in chunks]).mean(0)
    canon = torch.stack([canonical(c['eigenvectors']) for c in chunks]).mean(0)
    raw = torch.stack([c['eigenvectors'] for c in chunks]).mean(0)
    mean_cov = torch.stack([c['cov'] for c in chunks]).mean(0)
    cvals, cvecs = torch.linalg.eigh(mean_cov, UPLO='U')
    cvals, cvecs = cvals.flip(0), canonical(cvecs.t().flip(0))

    w_canon = weight_from(vals, canon)
    sample = images[:2]
    y = F.conv2d(sample, hwio_to_oihw(w_canon), padding=0)
    write('whitening.json', {
        'numImages': n, 'chunkSize': chunk, 'eps': 1e-2, 'draws': attempt + 1,
        'images': enc(nhwc(images)), 'permutation': perm.tolist(),
        'chunks': [{'eigenvalues': enc(c['eigenvalues']), 'eigenvectors': enc(c['eigenvectors']),
                    'minRelGap': c['minRelGap']} for c in chunks],
        'eigenvalues': enc(vals), 'weightCanonical': enc(w_canon), 'weightRaw': enc(weight_from(vals, raw)),
        'covarianceEigenvalues': enc(cvals), 'weightCovariance': enc(weight_from(cvals, cvecs)),
        'forwardInput': enc(nhwc(sample)), 'forwardOutput': enc(nhwc(y)),
    })


def hwio_to_oihw(w):
    return w.permute(3, 2, 0, 1).contiguous()


def fixture_dirac():
    cases = []
    for cout, cin in [(6, 4), (4, 6), (4, 4)]:
        w = torch.randn(cout, cin, 3, 3) * (1 / math.sqrt(cin * 9))
        dirac = torch.nn.init.dirac_(torch.empty_like(w))
        std_pre, mean_pre = torch.std_mean(w)
        w2 = 0.1 * w + dirac
        std_post, mean_post = torch.std_mean(w2)
        # The seed's renormalisation back to the original statistics.
        w2 = (w2 - mean_post) / std_post * std_pre + mean_pre
        cases.append({'cout': cout, 'cin': cin, 'weight': enc(hwio(w)), 'dirac': enc(hwio(dirac)),
                      'renorm': enc(hwio(w2)), 'stdPre': std_pre.item(), 'meanPre': mean_pre.item(),
                      'stdPost': std_post.item(), 'meanPost': mean_post.item()})
    write('dirac.json', {'scale': 0.1, 'cases': cases})


def fixture_eigh():
    a = torch.randn(12, 12, dtype=torch.float64)
    sym = a @ a.t() / 12
    vals, vecs = torch.linalg.eigh(sym, UPLO='U')
    write('eigh.json', {'matrix': enc(sym), 'eigenvalues': enc(vals), 'eigenvectors': enc(vecs)})


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='test/fixtures/layers')
    parser.add_argument('--seed', type=int, default=0)
    ARGS = parser.parse_args()
    for fn in [fixture_gelu, fixture_conv, fixture_linear, fixture_batchnorm, fixture_conv_group, fixture_whitening,
               fixture_dirac, fixture_eigh]:
        torch.manual_seed(ARGS.seed)
        fn()


if __name__ == '__main__':
    main()
