"""Golden fixtures for the training toolkit (OneCycle, SGD, NetworkEMA, loss), from PyTorch 1.13.

Run from the repository root:  /usr/bin/python3 tools/reference/train_fixtures.py
Writes test/fixtures/train/{onecycle,sgd,ema,loss}.json. Each fixture records this script and
its arguments. Tensors are written in tfjs layout (conv kernels [kh, kw, in, out], dense
kernels [in, out]) so tests compare element by element without transposing.
"""
import os

import torch
import torch.nn.functional as F
from torch import nn

from fixture_io import source_fields, to_tfjs
from fixture_io import write as write_fixture
# The seed's NetworkEMA (with its damaged copy-back line restored), loss and hyperparameters, from the
# repaired seed (importing it runs nothing).
from speedy_convnet import NetworkEMA, compute_loss, loss_fn, make_hyp

OUT = os.path.join('test', 'fixtures', 'train')
SOURCE = source_fields('tools/reference/train_fixtures.py')


def write(name, payload):
    write_fixture(OUT, name, {'source': SOURCE, **payload})


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


# ---------------------------------------------------------------- OneCycleLR
def onecycle_sequence(max_lr, total_steps, pct_start, div_factor, final_div_factor, anneal, groups=1):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(groups)]
    base = max_lr if not isinstance(max_lr, list) else max_lr[0]
    opt = torch.optim.SGD([{'params': [p]} for p in params], lr=base, momentum=0.85, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=max_lr, pct_start=pct_start, div_factor=div_factor, final_div_factor=final_div_factor,
        total_steps=total_steps, anneal_strategy=anneal, cycle_momentum=False)
    lrs = [[g['lr'] for g in opt.param_groups]]
    for _ in range(total_steps):
        opt.step()
        sched.step()
        lrs.append([g['lr'] for g in opt.param_groups])
    raised = None
    try:
        opt.step()
        sched.step()
    except ValueError as e:
        raised = str(e)
    # Transpose to one sequence per group, steps 0..total_steps inclusive.
    return [[row[g] for row in lrs] for g in range(groups)], raised


def onecycle():
    bias_scaler, batchsize = 64, 1024
    initial_div_factor, final_lr_ratio = 1e16, .07
    cases = []
    seed_kwargs = dict(total_steps=581, pct_start=.23, div_factor=initial_div_factor,
                       final_div_factor=1. / (initial_div_factor * final_lr_ratio), anneal='linear')
    for label, lr in (('seed non-bias', 1.525 / 512), ('seed bias', 1.525 * bias_scaler / 512)):
        seqs, raised = onecycle_sequence(lr, **seed_kwargs)
        cases.append({'label': label, 'maxLr': lr, 'totalSteps': 581, 'pctStart': .23, 'divFactor': initial_div_factor,
                      'finalDivFactor': seed_kwargs['final_div_factor'], 'anneal': 'linear', 'lrs': seqs[0], 'raised': raised})
    seqs, raised = onecycle_sequence(0.1, 100, 0.3, 25., 1e4, 'cos')
    cases.append({'label': 'cosine, torch defaults', 'maxLr': 0.1, 'totalSteps': 100, 'pctStart': 0.3, 'divFactor': 25.,
                  'finalDivFactor': 1e4, 'anneal': 'cos', 'lrs': seqs[0], 'raised': raised})
    seqs, raised = onecycle_sequence([0.4, 0.04], 37, 0.5, 10., 100., 'linear', groups=2)
    for g, lr in enumerate([0.4, 0.04]):
        cases.append({'label': f'linear, list max_lr (group {g})', 'maxLr': lr, 'totalSteps': 37, 'pctStart': 0.5,
                      'divFactor': 10., 'finalDivFactor': 100., 'anneal': 'linear', 'lrs': seqs[g], 'raised': raised})
    write('onecycle.json', {'cases': cases})


# ---------------------------------------------------------------- SGD
def sgd():
    torch.manual_seed(1)
    batchsize, bias_scaler = 1024, 64
    shapes = {  # names mirror the seed's state dict; the norm weight is frozen (requires_grad False)
        'initial_block/state_pred/weight': (4, 3, 2, 2),
        'conv_group_1/norm1/weight': (4,),
        'conv_group_1/norm1/bias': (4,),
        'linear/weight': (5, 4),
    }
    params = {n: torch.nn.Parameter(torch.randn(s)) for n, s in shapes.items()}
    params['conv_group_1/norm1/weight'].requires_grad = False
    initial = {n: flat(to_tfjs(p)) for n, p in params.items()}
    non_bias = {'params': [], 'lr': 1.525 / 512 * 200, 'momentum': .85, 'nesterov': True,
                'weight_decay': 6.687e-4 * batchsize, 'foreach': True}
    bias = {'params': [], 'lr': 1.525 * bias_scaler / 512, 'momentum': .85, 'nesterov': True,
            'weight_decay': 6.687e-4 * batchsize / bias_scaler, 'foreach': True}
    for name, p in params.items():  # the seed's init_split_parameter_dictionaries
        if p.requires_grad:
            (bias if 'bias' in name else non_bias)['params'].append(p)
    opt, opt_bias = torch.optim.SGD(**non_bias), torch.optim.SGD(**bias)
    sched_kwargs = dict(pct_start=.4, div_factor=5., final_div_factor=3., total_steps=5,
                        anneal_strategy='linear', cycle_momentum=False)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=non_bias['lr'], **sched_kwargs)
    sched_bias = torch.optim.lr_scheduler.OneCycleLR(opt_bias, max_lr=bias['lr'], **sched_kwargs)
    missing = {2: 'linear/weight', 3: 'conv_group_1/norm1/bias'}  # no gradient in that step (grad None)
    steps = []
    for step in range(5):
        grads = {}
        for name, p in params.items():
            if not p.requires_grad or missing.get(step) == name:
                p.grad = None
                continue
            p.grad = torch.randn(p.shape)
            grads[name] = flat(to_tfjs(p.grad))
        lrs = [opt.param_groups[0]['lr'], opt_bias.param_groups[0]['lr']]
        opt.step()
        opt_bias.step()
        sched.step()
        sched_bias.step()
        steps.append({'grads': grads, 'lrs': lrs, 'params': {n: flat(to_tfjs(p)) for n, p in params.items()}})
    buffers = {}
    for o in (opt, opt_bias):
        for name, p in params.items():
            if p in o.state:
                buffers[name] = flat(to_tfjs(o.state[p]['momentum_buffer']))
    tf_shapes = {n: list(to_tfjs(p).shape) for n, p in params.items()}
    write('sgd.json', {
        'shapes': tf_shapes, 'trainable': {n: p.requires_grad for n, p in params.items()}, 'initial': initial,
        'groups': {'nonBias': {k: v for k, v in non_bias.items() if k != 'params'},
                   'bias': {k: v for k, v in bias.items() if k != 'params'}},
        'schedule': {'pctStart': .4, 'divFactor': 5., 'finalDivFactor': 3., 'totalSteps': 5, 'anneal': 'linear'},
        'steps': steps, 'finalBuffers': buffers})


# ---------------------------------------------------------------- NetworkEMA
class Tiny(nn.Module):
    """Entries named like the seed's state dict: a whitening conv, a conv group with a BatchNorm, a head."""

    def __init__(self):
        super().__init__()
        self.initial_block = nn.ModuleDict({'whiten': nn.Conv2d(3, 4, 2, bias=False)})
        self.conv_group_1 = nn.ModuleDict({'conv1': nn.Conv2d(4, 3, 1, bias=False), 'norm1': nn.BatchNorm2d(3)})
        self.linear = nn.Linear(3, 2, bias=False)


def ema():
    torch.manual_seed(2)
    net = Tiny()
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.dtype == torch.float:
                t.copy_(torch.randn(t.shape) if 'running_var' not in name else torch.rand(t.shape) + .5)
    names = [n.replace('.', '/') for n, t in net.state_dict().items() if t.dtype == torch.float]
    state = lambda n: {k.replace('.', '/'): flat(to_tfjs(t)) for k, t in n.state_dict().items() if t.dtype == torch.float}
    initial = state(net)
    shapes = {k.replace('.', '/'): list(to_tfjs(t).shape) for k, t in net.state_dict().items() if t.dtype == torch.float}
    net_ema = NetworkEMA(net)  # the seed creates the EMA from the live net on its first EMA step, then updates at once
    decay_base, every_n, decay_pow, total = .95, 5, 3., 40
    steps = []
    for i, step in enumerate((5, 10, 15, 20, 25)):
        deltas = {}
        if i > 0:  # a 'training step' moved every float entry of the live net, running stats included
            with torch.no_grad():
                for k, t in net.state_dict().items():
                    if t.dtype == torch.float:
                        d = 0.1 * torch.randn(t.shape)
                        t.add_(d)
                        deltas[k.replace('.', '/')] = flat(to_tfjs(d))
                    else:
                        t.add_(1)  # num_batches_tracked: an int entry the EMA skips
        decay = decay_base ** every_n * (step / total) ** decay_pow
        net_ema.update(net, decay=decay)
        steps.append({'step': step, 'decay': decay, 'deltas': deltas, 'ema': state(net_ema.net_ema), 'live': state(net)})
    write('ema.json', {'names': names, 'shapes': shapes, 'initial': initial, 'totalSteps': total,
                       'decayBase': decay_base, 'everyN': every_n, 'decayPow': decay_pow, 'steps': steps})


# ---------------------------------------------------------------- loss
def loss():
    torch.manual_seed(3)
    batch, classes = 6, 10
    logits = (3 * torch.randn(batch, classes)).requires_grad_(True)
    labels = torch.randint(0, classes, (batch,))
    targets = F.one_hot(labels, classes).float()
    partner = torch.randperm(batch)
    portion = 4. / 16.  # cutmix-mixed soft targets for half the batch
    targets[:3] = portion * targets[partner][:3] + (1 - portion) * targets[:3]
    hyp = make_hyp(batchsize=1024)
    ce = loss_fn(logits, targets)
    loss_scale_scaler, loss_batchsize_scaler = hyp['opt']['loss_scale_scaler'], 512 / hyp['batchsize']
    loss_value = compute_loss(logits, targets, hyp)
    loss_value.backward()
    accuracy = (logits.detach().argmax(-1) == targets.argmax(-1)).float().mean().item()
    write('loss.json', {'batch': batch, 'classes': classes, 'logits': flat(logits), 'targets': flat(targets),
                        'labelSmoothing': 0.1, 'lossScale': loss_scale_scaler, 'batchScale': loss_batchsize_scaler,
                        'ce': flat(ce), 'loss': loss_value.item(), 'grad': flat(logits.grad), 'accuracy': accuracy})


if __name__ == '__main__':
    onecycle()
    sgd()
    ema()
    loss()
