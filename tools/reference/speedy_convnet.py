#!/usr/bin/env python3
"""Repaired, runnable copy of the seed network sketch (hlb-CIFAR10 v0.7.0 family), for CPU and CUDA.

This is the PyTorch reference the TypeScript port is compared against. It follows the seed (the
network sketch, docs/seed-differences.md) line for line where the seed is intact, and fills its
damaged lines the way hlb-CIFAR10 v0.7.0 writes them. Deliberate departures, each
needed to run outside a notebook on a CPU, are listed in tools/reference/README.md and marked
`# departure:` below.

Run from the repository root, e.g.
  /usr/bin/python3 tools/reference/speedy_convnet.py --data ~/cifar-10-batches-bin \
      --train-limit 2048 --eval-limit 1000 --epochs 2 --base-depth 16 --batch-size 256 --threads 2

It prints the seed's table (one row per epoch), then the seed's "Mean and variance" line over runs,
and with --json OUT writes per-epoch metrics, final accuracies, training time (eval excluded),
the resolved hyperparameters, the torch version and the thread count.
"""
import argparse
import copy
import json
import math
import os
import platform
import resource
import shlex
import sys
import time
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# set global defaults (in this particular file) for convolutions
default_conv_kwargs = {'kernel_size': 3, 'padding': 'same', 'bias': False}


def make_hyp(batchsize=1024, base_depth=64, train_epochs=12.1, ema_epochs=10, cutmix_size=0, cutmix_epochs=6,
             num_examples=50000, device='cpu'):
    """The seed's `hyp` dictionary. In the seed `batchsize` is a global that the decays are computed from,
    so changing the batch size here scales them exactly as editing the seed's `batchsize` line would."""
    bias_scaler = 64
    return {
        'batchsize': batchsize,
        'opt': {
            'bias_lr': 1.525 * bias_scaler / 512,
            'non_bias_lr': 1.525 / 512,
            'bias_decay': 6.687e-4 * batchsize / bias_scaler,
            'non_bias_decay': 6.687e-4 * batchsize,
            'scaling_factor': 1. / 12,
            'percent_start': .23,
            'loss_scale_scaler': 1. / 32,
        },
        'net': {
            'whitening': {
                'kernel_size': 2,
                'num_examples': num_examples,
            },
            'batch_norm_momentum': .4,  # PyTorch convention: running = 0.6 * running + 0.4 * batch
            'cutmix_size': cutmix_size,
            'cutmix_epochs': cutmix_epochs,
            'pad_amount': 2,
            'base_depth': base_depth,
        },
        'misc': {
            'ema': {
                'epochs': ema_epochs,
                'decay_base': .95,
                'decay_pow': 3.,
                'every_n_steps': 5,
            },
            'train_epochs': train_epochs,
            'device': device,
        },
    }


#############################################
#                Dataloader                 #
#############################################

def read_cifar10_binary(paths, limit=None):
    """CIFAR-10 binary release: records of 1 label byte + 3072 bytes (R, G, B planes of 32x32).
    Returns (uint8 images [N, 3, 32, 32], int64 labels [N]) for the first `limit` records in file order."""
    chunks, have = [], 0
    for path in paths:
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size % 3073 != 0:
            raise ValueError(f'{path}: size {raw.size} is not a multiple of 3073-byte CIFAR-10 records')
        records = raw.reshape(-1, 3073)
        if limit is not None:
            records = records[:limit - have]
        chunks.append(records)
        have += records.shape[0]
        if limit is not None and have >= limit:
            break
    records = np.concatenate(chunks, axis=0)
    labels = torch.from_numpy(records[:, 0].astype(np.int64))
    images = torch.from_numpy(np.ascontiguousarray(records[:, 1:])).view(-1, 3, 32, 32)
    return images, labels


def load_data(hyp, data_dir, train_limit=None, eval_limit=None, dtype=torch.float32):
    """The seed's data block (lines 66-105): ToTensor scaling, per-channel std/mean of the training images
    (torch.std_mean is unbiased), normalisation, one-hot targets, the compute dtype, reflect padding."""
    device = hyp['misc']['device']
    train_paths = [os.path.join(data_dir, f'data_batch_{i}.bin') for i in range(1, 6)]
    eval_paths = [os.path.join(data_dir, 'test_batch.bin')]
    train_images, train_labels = read_cifar10_binary(train_paths, train_limit)
    eval_images, eval_labels = read_cifar10_binary(eval_paths, eval_limit)
    train_dataset = {'images': train_images.to(device).float().div(255.), 'targets': train_labels.to(device)}
    eval_dataset = {'images': eval_images.to(device).float().div(255.), 'targets': eval_labels.to(device)}
    # departure: stats come from the (possibly limited) training images this run actually has
    cifar10_std, cifar10_mean = torch.std_mean(train_dataset['images'], dim=(0, 2, 3))

    def batch_normalize_images(input_images, mean, std):
        return (input_images - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)

    batch_normalize_images = partial(batch_normalize_images, mean=cifar10_mean, std=cifar10_std)
    train_dataset['images'] = batch_normalize_images(train_dataset['images'])
    eval_dataset['images'] = batch_normalize_images(eval_dataset['images'])
    data = {'train': train_dataset, 'eval': eval_dataset}
    # departure: the seed converts to half here; float32 on CPU (half convolutions are CUDA-only)
    data['train']['images'] = data['train']['images'].to(dtype).requires_grad_(False)
    data['eval']['images'] = data['eval']['images'].to(dtype).requires_grad_(False)
    # num_classes pinned to 10: a small subset may lack a class, and F.one_hot would then infer fewer
    data['train']['targets'] = F.one_hot(data['train']['targets'], num_classes=10).to(dtype)
    data['eval']['targets'] = F.one_hot(data['eval']['targets'], num_classes=10).to(dtype)
    if hyp['net']['pad_amount'] > 0:
        data['train']['images'] = F.pad(data['train']['images'], (hyp['net']['pad_amount'],) * 4, 'reflect')
    data['stats'] = {'mean': cifar10_mean.float().tolist(), 'std': cifar10_std.float().tolist()}
    return data


#############################################
#            Network Components             #
#############################################

class BatchNorm(nn.BatchNorm2d):
    def __init__(self, num_features, eps=1e-12, momentum=.4, weight=False, bias=True):
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.weight.requires_grad = weight
        self.bias.requires_grad = bias


class Conv(nn.Conv2d):
    def __init__(self, *args, temperature=None, lr_mult=None, **kwargs):
        kwargs = {**default_conv_kwargs, **kwargs}
        super().__init__(*args, **kwargs)
        self.temperature = temperature
        self.lr_mult = lr_mult
        if self.lr_mult is not None:
            with torch.no_grad():
                self.weight /= self.lr_mult
        self.kwargs = kwargs

    def forward(self, x):
        if self.temperature is not None:
            weight = self.weight * self.temperature
        else:
            weight = self.weight
        if self.lr_mult is not None:
            weight = weight * self.lr_mult
        result = F.conv2d(x, weight, stride=self.stride, padding=self.padding)
        return result


class Linear(nn.Linear):
    def __init__(self, *args, temperature=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.kwargs = kwargs
        self.temperature = temperature

    def forward(self, x):
        if self.temperature is not None:
            weight = self.weight * self.temperature
        else:
            weight = self.weight
        return x @ weight.T


class ConvGroup(nn.Module):
    def __init__(self, channels_in, channels_out, state_pred_dim, batch_norm_momentum=.4):
        super().__init__()
        self.channels_in = channels_in
        self.channels_out = channels_out
        self.pool1 = nn.MaxPool2d(2)
        self.conv1 = Conv(channels_in, channels_out)
        self.conv2 = Conv(channels_out, channels_out)
        self.norm1 = BatchNorm(channels_out, momentum=batch_norm_momentum)
        self.norm2 = BatchNorm(channels_out, momentum=batch_norm_momentum)
        self.state_pred_dim = state_pred_dim
        if self.state_pred_dim is not None:
            self.state_project = Conv(channels_out, state_pred_dim, kernel_size=3, lr_mult=None, padding='same')
            self.state_norm = BatchNorm(state_pred_dim, momentum=batch_norm_momentum)
        self.activ = nn.GELU()

    def forward(self, x):
        x = self.conv1(x)
        x = self.pool1(x)
        x = self.norm1(x)
        x = self.activ(x)
        x = self.conv2(x)
        x = self.norm2(x)
        x = self.activ(x)
        if self.state_pred_dim is not None:
            # Bridge the state between conv blocks
            pred_state = self.state_norm(self.pool1(self.state_project(x)))
        else:
            pred_state = None
        return x, pred_state


class FastGlobalMaxPooling(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.amax(x, dim=(2, 3))  # Global maximum pooling


#############################################
#          Init Helper Functions            #
#############################################

def get_patches(x, patch_shape=(3, 3), dtype=torch.float32):
    c, (h, w) = x.shape[1], patch_shape
    return x.unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c, h, w).to(dtype)


def get_whitening_parameters(patches):
    n, c, h, w = patches.shape
    est_covariance = torch.cov(patches.view(n, c * h * w).t())
    eigenvalues, eigenvectors = torch.linalg.eigh(est_covariance, UPLO='U')
    return eigenvalues.flip(0).view(-1, 1, 1, 1), eigenvectors.t().reshape(c * h * w, c, h, w).flip(0)


def canonical_signs(eigenvectors):
    """Each eigenvector flipped so its largest-magnitude component is positive (tfjs-dataflow's default)."""
    flat = eigenvectors.reshape(eigenvectors.shape[0], -1)
    largest = flat.gather(1, flat.abs().argmax(1, keepdim=True))
    return eigenvectors * torch.where(largest < 0, -1., 1.).to(eigenvectors.dtype).view(-1, 1, 1, 1)


def init_whitening_conv(layer, train_set=None, num_examples=None, previous_block_data=None, pad_amount=None,
                        freeze=True, whiten_splits=None, signs='raw'):
    if train_set is not None and previous_block_data is None:
        if pad_amount > 0:
            previous_block_data = train_set[:num_examples, :, pad_amount:-pad_amount, pad_amount:-pad_amount]
        else:
            previous_block_data = train_set[:num_examples, :, :, :]
    if whiten_splits is None:
        previous_block_data_split = [previous_block_data]
    else:
        previous_block_data_split = previous_block_data.split(whiten_splits, dim=0)
    eigenvalue_list, eigenvector_list = [], []
    for data_split in previous_block_data_split:
        eigenvalues, eigenvectors = get_whitening_parameters(get_patches(data_split, patch_shape=layer.weight.data.shape[2:]))
        if signs == 'canonical':  # not the seed: an experiment option (--whitening-signs), see docs/results.md
            eigenvectors = canonical_signs(eigenvectors)
        eigenvalue_list.append(eigenvalues)
        eigenvector_list.append(eigenvectors)
    # Averaging eigenvectors across chunks is sign-sensitive; the seed does it anyway.
    eigenvalues = torch.stack(eigenvalue_list, dim=0).mean(0)
    eigenvectors = torch.stack(eigenvector_list, dim=0).mean(0)
    set_whitening_conv(layer, eigenvalues.to(dtype=layer.weight.dtype), eigenvectors.to(dtype=layer.weight.dtype), freeze=freeze)
    # departure: the seed ends with `data = layer(previous_block_data); return data`, a forward pass over
    # all whitening images whose result make_net discards; skipped (it would need ~4.6 GB at 50k images).


def set_whitening_conv(conv_layer, eigenvalues, eigenvectors, eps=1e-2, freeze=True):
    shape = conv_layer.weight.data.shape
    eigenvectors_sliced = (eigenvectors / torch.sqrt(eigenvalues + eps))[-shape[0]:, :, :, :]
    # The kernel and its negation: 12 filters become 24 output channels.
    conv_layer.weight.data = torch.cat((eigenvectors_sliced, -eigenvectors_sliced), dim=0)
    if freeze:
        conv_layer.weight.requires_grad = False


#############################################
#            Network Definition             #
#############################################

def make_depths(base_depth):
    scaler = 2.
    return {
        'init': round(scaler ** -1 * base_depth),
        'block1': round(scaler ** 0 * base_depth),
        'block2': round(scaler ** 2 * base_depth),
        'block3': round(scaler ** 3 * base_depth),
        'num_classes': 10,
    }


class SpeedyConvNet(nn.Module):
    def __init__(self, network_dict, mode='sketch'):
        super().__init__()
        if mode not in ('sketch', 'backprop'):
            raise ValueError(f"mode must be 'sketch' or 'backprop', got {mode!r}")
        self.net_dict = network_dict
        self.mode = mode

    def simulate_discrete_action(self, x, noise_std_mul=1.):
        if self.mode == 'backprop':
            return x  # the comparison variant: plain backprop, no detach, no noise
        # Only the mean path is detached: the std scalar still carries a gradient. No training check: noise at eval too.
        return x.detach() + noise_std_mul * x.std() * torch.randn_like(x)

    def forward(self, x):
        if not self.training:
            x = torch.cat((x, torch.flip(x, (-1,))))
        x = self.net_dict['initial_block']['whiten'](x)
        x0 = self.net_dict['initial_block']['activation'](x)
        state_pred_1 = F.max_pool2d(self.net_dict['initial_block']['state_pred'](x0), 2)
        state_pred_1 = F.gelu(self.net_dict['initial_block']['state_norm'](state_pred_1))
        x1, state_pred2 = self.net_dict['conv_group_1'](x0)
        x1 = self.simulate_discrete_action(x1) + state_pred_1
        x2, state_pred3 = self.net_dict['conv_group_2'](x1)
        x2 = self.simulate_discrete_action(x2) + state_pred2
        x3, _ = self.net_dict['conv_group_3'](x2)
        x3 = self.simulate_discrete_action(x3) + state_pred3
        x4 = self.net_dict['pooling'](x3)
        x4 = self.net_dict['linear'](x4)
        if not self.training:
            # Average the predictions from the lr-flipped inputs during eval
            orig, flipped = x4.split(x4.shape[0] // 2, dim=0)
            x4 = .5 * orig + .5 * flipped
        return x4


def dirac_renormalised_(weight, downscale=.1):
    """weight <- 0.1 * weight + dirac(weight), then rescaled back to the original mean and std (unbiased)."""
    dirac_weights = torch.nn.init.dirac_(torch.empty_like(weight))
    std_pre, mean_pre = torch.std_mean(weight.data)
    weight.data = downscale * weight.data + dirac_weights
    std_post, mean_post = torch.std_mean(weight.data)
    weight.data = ((weight.data - mean_post) / std_post) * std_pre + mean_pre


def make_net(hyp, train_images, mode='sketch', channels_last=False, dtype=torch.float32):
    depths = make_depths(hyp['net']['base_depth'])
    bn_momentum = hyp['net']['batch_norm_momentum']
    whiten_conv_depth = 3 * hyp['net']['whitening']['kernel_size'] ** 2
    network_dict = nn.ModuleDict({
        'initial_block': nn.ModuleDict({
            'whiten': Conv(3, whiten_conv_depth, kernel_size=hyp['net']['whitening']['kernel_size'], padding=0),
            'state_pred': Conv(2 * whiten_conv_depth, depths['block1'], kernel_size=3, padding='same'),
            'state_norm': BatchNorm(depths['block1'], momentum=bn_momentum),
            'activation': nn.GELU(),
        }),
        'conv_group_1': ConvGroup(2 * whiten_conv_depth, depths['block1'], depths['block2'], bn_momentum),
        'conv_group_2': ConvGroup(depths['block1'], depths['block2'], depths['block3'], bn_momentum),
        'conv_group_3': ConvGroup(depths['block2'], depths['block3'], None, bn_momentum),
        'pooling': FastGlobalMaxPooling(),
        'linear': Linear(depths['block3'], depths['num_classes'], bias=False, temperature=hyp['opt']['scaling_factor']),
    })
    net = SpeedyConvNet(network_dict, mode=mode)
    net = net.to(hyp['misc']['device'])
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    net.train()
    net.to(dtype)  # departure: the seed calls net.half(); float32 on CPU

    with torch.no_grad():
        init_whitening_conv(net.net_dict['initial_block']['whiten'],
                            train_images.index_select(0, torch.randperm(train_images.shape[0], device=train_images.device)),
                            num_examples=hyp['net']['whitening']['num_examples'],
                            pad_amount=hyp['net']['pad_amount'],
                            whiten_splits=5000,
                            signs=hyp['net']['whitening'].get('signs', 'raw'))
        for layer_name in net.net_dict.keys():
            if 'conv_group' in layer_name:
                group = net.net_dict[layer_name]
                # Implicit residual: conv1 <- 0.1 * w + dirac, renormalised to its init statistics.
                dirac_renormalised_(group.conv1.weight)
                torch.nn.init.dirac_(group.conv2.weight)
                if group.state_pred_dim is not None and group.state_project.weight.shape[0] > group.conv2.weight.shape[0]:
                    dirac_renormalised_(group.state_project.weight)
    return net


#############################################
#            Data Preprocessing             #
#############################################

def make_random_square_masks(inputs, mask_size):
    if mask_size == 0:
        return None
    is_even = int(mask_size % 2 == 0)
    in_shape = inputs.shape
    mask_center_y = torch.empty(in_shape[0], dtype=torch.long, device=inputs.device).random_(mask_size // 2 - is_even, in_shape[-2] - mask_size // 2 - is_even)
    mask_center_x = torch.empty(in_shape[0], dtype=torch.long, device=inputs.device).random_(mask_size // 2 - is_even, in_shape[-1] - mask_size // 2 - is_even)
    to_mask_y_dists = torch.arange(in_shape[-2], device=inputs.device).view(1, 1, in_shape[-2], 1) - mask_center_y.view(-1, 1, 1, 1)
    to_mask_x_dists = torch.arange(in_shape[-1], device=inputs.device).view(1, 1, 1, in_shape[-1]) - mask_center_x.view(-1, 1, 1, 1)
    to_mask_y = (to_mask_y_dists >= (-(mask_size // 2) + is_even)) * (to_mask_y_dists <= mask_size // 2)
    to_mask_x = (to_mask_x_dists >= (-(mask_size // 2) + is_even)) * (to_mask_x_dists <= mask_size // 2)
    final_mask = to_mask_y * to_mask_x
    return final_mask


def batch_cutmix(inputs, targets, patch_size):
    with torch.no_grad():
        batch_permuted = torch.randperm(inputs.shape[0], device=inputs.device)
        cutmix_batch_mask = make_random_square_masks(inputs, patch_size)
        if cutmix_batch_mask is None:
            return inputs, targets
        cutmix_batch = torch.where(cutmix_batch_mask, torch.index_select(inputs, 0, batch_permuted), inputs)
        cutmix_targets = torch.index_select(targets, 0, batch_permuted)
        portion_mixed = float(patch_size ** 2) / (inputs.shape[-2] * inputs.shape[-1])
        cutmix_labels = portion_mixed * cutmix_targets + (1. - portion_mixed) * targets
        return cutmix_batch, cutmix_labels


def batch_crop(inputs, crop_size):
    with torch.no_grad():
        crop_mask_batch = make_random_square_masks(inputs, crop_size)
        cropped_batch = torch.masked_select(inputs, crop_mask_batch).view(inputs.shape[0], inputs.shape[1], crop_size, crop_size)
        return cropped_batch


def batch_flip_lr(batch_images, flip_chance=.5):
    with torch.no_grad():
        return torch.where(torch.rand_like(batch_images[:, 0, 0, 0].view(-1, 1, 1, 1)) < flip_chance, torch.flip(batch_images, (-1,)), batch_images)


#############################################
#            Training Helpers               #
#############################################

class NetworkEMA(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net_ema = copy.deepcopy(net).eval().requires_grad_(False)

    def update(self, current_net, decay):
        with torch.no_grad():
            for ema_net_parameter, (parameter_name, incoming_net_parameter) in zip(self.net_ema.state_dict().values(), current_net.state_dict().items()):
                if incoming_net_parameter.dtype in (torch.half, torch.float):
                    ema_net_parameter.mul_(decay).add_(incoming_net_parameter.detach().mul(1. - decay))
                    # Copy back into the live network (Lookahead-like), except batch-norm weights and the whitening conv.
                    if not ('norm' in parameter_name and 'weight' in parameter_name) and not 'whiten' in parameter_name:
                        incoming_net_parameter.copy_(ema_net_parameter.detach())

    def forward(self, inputs):
        with torch.no_grad():
            return self.net_ema(inputs)


@torch.no_grad()
def get_batches(data_dict, key, batchsize, epoch_fraction=1., cutmix_size=None, channels_last=False):
    num_epoch_examples = len(data_dict[key]['images'])
    shuffled = torch.randperm(num_epoch_examples, device=data_dict[key]['images'].device)
    if epoch_fraction < 1:
        shuffled = shuffled[:batchsize * round(epoch_fraction * shuffled.shape[0] / batchsize)]
        num_epoch_examples = shuffled.shape[0]
    crop_size = 32
    if key == 'train':
        images = batch_crop(data_dict[key]['images'], crop_size)
        images = batch_flip_lr(images)
        images, targets = batch_cutmix(images, data_dict[key]['targets'], patch_size=cutmix_size)
    else:
        images = data_dict[key]['images']
        targets = data_dict[key]['targets']
    if channels_last:
        images = images.to(memory_format=torch.channels_last)
    for idx in range(num_epoch_examples // batchsize):
        if not (idx + 1) * batchsize > num_epoch_examples:
            yield images.index_select(0, shuffled[idx * batchsize:(idx + 1) * batchsize]), \
                targets.index_select(0, shuffled[idx * batchsize:(idx + 1) * batchsize])


def init_split_parameter_dictionaries(network, hyp):
    params_non_bias = {'params': [], 'lr': hyp['opt']['non_bias_lr'], 'momentum': .85, 'nesterov': True, 'weight_decay': hyp['opt']['non_bias_decay'], 'foreach': True}
    params_bias = {'params': [], 'lr': hyp['opt']['bias_lr'], 'momentum': .85, 'nesterov': True, 'weight_decay': hyp['opt']['bias_decay'], 'foreach': True}
    for name, p in network.named_parameters():
        if p.requires_grad:
            if 'bias' in name:
                params_bias['params'].append(p)
            else:
                params_non_bias['params'].append(p)
    return params_non_bias, params_bias


def make_optimizers(net, hyp, total_train_steps):
    """Two SGD groups (nesterov 0.85, coupled decay) and their two linear OneCycle schedules."""
    non_bias_params, bias_params = init_split_parameter_dictionaries(net, hyp)
    opt = torch.optim.SGD(**non_bias_params)
    opt_bias = torch.optim.SGD(**bias_params)
    pct_start = hyp['opt']['percent_start']
    initial_div_factor = 1e16
    final_lr_ratio = .07
    lr_sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=non_bias_params['lr'], pct_start=pct_start, div_factor=initial_div_factor, final_div_factor=1. / (initial_div_factor * final_lr_ratio), total_steps=total_train_steps, anneal_strategy='linear', cycle_momentum=False)
    lr_sched_bias = torch.optim.lr_scheduler.OneCycleLR(opt_bias, max_lr=bias_params['lr'], pct_start=pct_start, div_factor=initial_div_factor, final_div_factor=1. / (initial_div_factor * final_lr_ratio), total_steps=total_train_steps, anneal_strategy='linear', cycle_momentum=False)
    return opt, opt_bias, lr_sched, lr_sched_bias


loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1, reduction='none')


def compute_loss(outputs, targets, hyp):
    """The seed's reduction: sum over the batch of per-example CE * (512 / batchsize); the 1/32 loss scale cancels."""
    loss_batchsize_scaler = 512 / hyp['batchsize']
    output_xentropy = loss_fn(outputs, targets)
    return output_xentropy.mul(hyp['opt']['loss_scale_scaler'] * loss_batchsize_scaler).sum().div(hyp['opt']['loss_scale_scaler'])


def train_step(net, inputs, targets, hyp, opt, opt_bias, lr_sched, lr_sched_bias):
    outputs = net(inputs)
    loss = compute_loss(outputs, targets, hyp)
    loss.backward()
    opt.step()
    opt_bias.step()
    # departure: guard so a fractional-epoch rounding that yields an extra step cannot make OneCycleLR raise
    if lr_sched.last_epoch < lr_sched.total_steps:
        lr_sched.step()
        lr_sched_bias.step()
    opt.zero_grad(set_to_none=True)
    opt_bias.zero_grad(set_to_none=True)
    return outputs, loss


def ema_step(net, net_ema, current_steps, total_train_steps, hyp):
    """Creates the EMA on its first due step (no update that step), then updates it with copy-back."""
    if net_ema is None:
        return NetworkEMA(net)
    projected_ema_decay_val = hyp['misc']['ema']['decay_base'] ** hyp['misc']['ema']['every_n_steps']
    net_ema.update(net, decay=projected_ema_decay_val * (current_steps / total_train_steps) ** hyp['misc']['ema']['decay_pow'])
    return net_ema


logging_columns_list = ['epoch', 'train_loss', 'val_loss', 'train_acc', 'val_acc', 'ema_val_acc', 'total_time_seconds']


def print_training_details(columns_list, separator_left='|  ', separator_right='  ', final="|", column_heads_only=False, is_final_entry=False):
    print_string = ""
    if column_heads_only:
        for column_head_name in columns_list:
            print_string += separator_left + column_head_name + separator_right
        print_string += final
        print('-' * (len(print_string)))
        print(print_string)
        print('-' * (len(print_string)))
    else:
        for column_value in columns_list:
            print_string += separator_left + column_value + separator_right
        print_string += final
        print(print_string)
    if is_final_entry:
        print('-' * (len(print_string)))


def pick_eval_batchsize(n_eval, wanted=2500):
    """The seed's 2500, shrunk for small eval sets: the largest divisor of n_eval that is <= min(2500, n_eval)."""
    b = min(wanted, n_eval)
    while n_eval % b != 0:
        b -= 1
    return b


def sync(device):
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


#############################################
#              Train and Eval               #
#############################################

def main(hyp, data, mode='sketch', channels_last=False, dtype=torch.float32, eval_batchsize=None, integer_epoch_quirk=False):
    """One training run of the seed's main(); returns (ema_val_acc, per-epoch records, run summary)."""
    device = hyp['misc']['device']
    batchsize = hyp['batchsize']
    net_ema = None
    total_time_seconds = 0.
    current_steps = 0.
    num_steps_per_epoch = len(data['train']['images']) // batchsize
    total_train_steps = math.ceil(num_steps_per_epoch * hyp['misc']['train_epochs'])
    ema_epoch_start = math.floor(hyp['misc']['train_epochs']) - hyp['misc']['ema']['epochs']

    net = make_net(hyp, data['train']['images'], mode=mode, channels_last=channels_last, dtype=dtype)
    opt, opt_bias, lr_sched, lr_sched_bias = make_optimizers(net, hyp, total_train_steps)
    sync(device)

    if eval_batchsize is None:
        eval_batchsize = pick_eval_batchsize(data['eval']['images'].shape[0])
    records = []
    train_loss = train_acc = None
    for epoch in range(math.ceil(hyp['misc']['train_epochs'])):
        # Training Mode (only this loop is timed, as the seed's CUDA events do)
        sync(device)
        starter = time.perf_counter()
        net.train()
        cutmix_size = hyp['net']['cutmix_size'] if epoch >= hyp['misc']['train_epochs'] - hyp['net']['cutmix_epochs'] else 0
        epoch_fraction = 1 if epoch + 1 < hyp['misc']['train_epochs'] else hyp['misc']['train_epochs'] % 1
        # departure: with a whole number of epochs the seed's last epoch gets fraction 0 and trains no step
        # (it never showed at 12.1); a whole last epoch is trained unless integer_epoch_quirk asks for the seed's.
        if epoch_fraction == 0 and not integer_epoch_quirk:
            epoch_fraction = 1
        epoch_steps = 0
        loss_sum, correct_sum, seen = 0., 0., 0
        for epoch_step, (inputs, targets) in enumerate(get_batches(data, key='train', batchsize=batchsize, epoch_fraction=epoch_fraction, cutmix_size=cutmix_size, channels_last=channels_last)):
            outputs, loss = train_step(net, inputs, targets, hyp, opt, opt_bias, lr_sched, lr_sched_bias)
            if epoch_step % 50 == 0:
                train_acc = (outputs.detach().argmax(-1) == targets.argmax(-1)).float().mean().item()
                train_loss = loss.detach().cpu().item() / (batchsize * (512 / batchsize))
            with torch.no_grad():  # epoch means for the JSON only; the table keeps the seed's every-50th-step sample
                loss_sum = loss_sum + loss.detach().float()
                correct_sum = correct_sum + (outputs.detach().argmax(-1) == targets.argmax(-1)).float().sum()
                seen += targets.shape[0]
            current_steps += 1
            epoch_steps += 1
            if epoch >= ema_epoch_start and current_steps % hyp['misc']['ema']['every_n_steps'] == 0:
                net_ema = ema_step(net, net_ema, current_steps, total_train_steps, hyp)
        sync(device)
        epoch_seconds = time.perf_counter() - starter
        total_time_seconds += epoch_seconds

        # Evaluation Mode
        eval_start = time.perf_counter()
        net.eval()
        assert data['eval']['images'].shape[0] % eval_batchsize == 0, "Error: The eval batchsize must evenly divide the eval dataset."
        loss_list_val, acc_list, acc_list_ema = [], [], []
        # departure: the seed would crash evaluating an EMA that no step has created yet (tiny configs); it is skipped
        use_ema = epoch >= ema_epoch_start and net_ema is not None
        with torch.no_grad():
            for inputs, targets in get_batches(data, key='eval', batchsize=eval_batchsize, channels_last=channels_last):
                if use_ema:
                    outputs = net_ema(inputs)
                    acc_list_ema.append((outputs.argmax(-1) == targets.argmax(-1)).float().mean())
                outputs = net(inputs)
                loss_list_val.append(loss_fn(outputs, targets).float().mean())
                acc_list.append((outputs.argmax(-1) == targets.argmax(-1)).float().mean())
            val_acc = torch.stack(acc_list).mean().item()
            ema_val_acc = None
            if use_ema:
                ema_val_acc = torch.stack(acc_list_ema).mean().item()
            val_loss = torch.stack(loss_list_val).mean().item()
        eval_seconds = time.perf_counter() - eval_start

        format_for_table = lambda x, locals: (f"{locals[x]}".rjust(len(x))) \
            if type(locals[x]) == int else "{:0.4f}".format(locals[x]).rjust(len(x)) \
            if locals[x] is not None \
            else " " * len(x)
        print_training_details(list(map(partial(format_for_table, locals=locals()), logging_columns_list)), is_final_entry=(epoch >= math.ceil(hyp['misc']['train_epochs'] - 1)))
        sys.stdout.flush()
        records.append({
            'epoch': epoch, 'train_loss': train_loss, 'val_loss': val_loss, 'train_acc': train_acc,
            'val_acc': val_acc, 'ema_val_acc': ema_val_acc, 'total_time_seconds': total_time_seconds,
            'train_loss_epoch_mean': float(loss_sum) / (seen * (512 / batchsize)) if seen else None,
            'train_acc_epoch_mean': float(correct_sum) / seen if seen else None,
            'epoch_train_seconds': epoch_seconds, 'eval_seconds': eval_seconds, 'steps': epoch_steps,
            'lr_non_bias_after_epoch': opt.param_groups[0]['lr'], 'lr_bias_after_epoch': opt_bias.param_groups[0]['lr'],
        })
    summary = {
        'val_acc': val_acc, 'ema_val_acc': ema_val_acc, 'val_loss': val_loss,
        'train_time_seconds': total_time_seconds, 'train_steps': int(current_steps),
        'train_images_per_sec': current_steps * batchsize / total_time_seconds if total_time_seconds > 0 else None,
        'ema_created': net_ema is not None,
    }
    run_info = {'num_steps_per_epoch': num_steps_per_epoch, 'total_train_steps': total_train_steps,
                'ema_epoch_start': ema_epoch_start, 'eval_batchsize': eval_batchsize}
    return ema_val_acc, records, summary, run_info


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', default='~/cifar-10-batches-bin', help='folder with the CIFAR-10 binary release (data_batch_1..5.bin, test_batch.bin)')
    p.add_argument('--epochs', type=float, default=12.1, help="train_epochs (the seed's 12.1; fractional epochs allowed)")
    p.add_argument('--batch-size', type=int, default=1024)
    p.add_argument('--base-depth', type=int, default=64)
    p.add_argument('--train-limit', type=int, default=None, help='use the first N training images')
    p.add_argument('--eval-limit', type=int, default=None, help='use the first N test images')
    p.add_argument('--eval-batch-size', type=int, default=None, help='default: largest divisor of the eval set <= 2500')
    p.add_argument('--runs', type=int, default=1, help='the seed runs 25')
    p.add_argument('--seed', type=int, default=0, help='run r uses torch.manual_seed(seed + r)')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    p.add_argument('--ema-epochs', type=int, default=10, help='EMA starts at epoch floor(epochs) - ema_epochs')
    p.add_argument('--cutmix-size', type=int, default=0)
    p.add_argument('--cutmix-epochs', type=int, default=6)
    p.add_argument('--mode', choices=['sketch', 'backprop'], default='sketch', help='backprop: same net, no detach, no noise')
    p.add_argument('--device', default='auto', help="'auto' (cuda when present), 'cpu' or 'cuda'")
    p.add_argument('--dtype', choices=['auto', 'float32', 'float16'], default='auto', help='auto: float16 on CUDA (as the seed), float32 on CPU')
    p.add_argument('--channels-last', action='store_true', help='the seed uses channels_last; optional here')
    p.add_argument('--integer-epoch-quirk', action='store_true',
                   help="reproduce the seed exactly: with whole-number --epochs its last epoch trains no step")
    p.add_argument('--whitening-signs', choices=['raw', 'canonical'], default='raw',
                   help="raw: the seed (solver's eigenvector signs averaged over chunks); canonical: tfjs-dataflow's default")
    p.add_argument('--json', default=None, help='write metrics here')
    return p.parse_args(argv)


def run_cli(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = ('cuda' if torch.cuda.is_available() else 'cpu') if args.device == 'auto' else args.device
    dtype = {'float32': torch.float32, 'float16': torch.float16}.get(args.dtype, torch.float16 if device.startswith('cuda') else torch.float32)
    hyp = make_hyp(batchsize=args.batch_size, base_depth=args.base_depth, train_epochs=args.epochs, ema_epochs=args.ema_epochs,
                   cutmix_size=args.cutmix_size, cutmix_epochs=args.cutmix_epochs, device=device)
    hyp['net']['whitening']['signs'] = args.whitening_signs
    torch.manual_seed(args.seed)
    load_start = time.perf_counter()
    data = load_data(hyp, args.data, args.train_limit, args.eval_limit, dtype=dtype)
    load_seconds = time.perf_counter() - load_start
    n_train, n_eval = data['train']['images'].shape[0], data['eval']['images'].shape[0]
    if n_train < args.batch_size:
        raise SystemExit(f'--batch-size {args.batch_size} exceeds the {n_train} training images: no full batch to train on')
    print(f'# speedy_convnet: torch {torch.__version__}, device {device}, {dtype}, threads {torch.get_num_threads()}, '
          f'train {n_train}, eval {n_eval}, mode {args.mode}, base depth {args.base_depth}, batch {args.batch_size}, epochs {args.epochs}')
    print_training_details(logging_columns_list, column_heads_only=True)

    runs, acc_list = [], []
    for run_num in range(args.runs):
        torch.manual_seed(args.seed + run_num)
        ema_val_acc, records, summary, run_info = main(hyp, data, mode=args.mode, channels_last=args.channels_last, dtype=dtype,
                                                       eval_batchsize=args.eval_batch_size, integer_epoch_quirk=args.integer_epoch_quirk)
        final = ema_val_acc if ema_val_acc is not None else summary['val_acc']
        acc_list.append(torch.tensor(final))
        runs.append({'run': run_num, 'seed': args.seed + run_num, 'epochs': records, **summary})
    mean, var = torch.mean(torch.stack(acc_list)).item(), torch.var(torch.stack(acc_list)).item() if len(acc_list) > 1 else float('nan')
    print("Mean and variance:", (mean, var))

    if args.json:
        out = {
            'script': 'tools/reference/speedy_convnet.py',
            'command': '/usr/bin/python3 ' + ' '.join(shlex.quote(a) for a in [sys.argv[0]] + (sys.argv[1:] if argv is None else list(argv))),
            'torch': torch.__version__,
            'python': platform.python_version(),
            'threads': torch.get_num_threads(),
            'device': device,
            'dtype': str(dtype).replace('torch.', ''),
            'config': {**vars(args), 'n_train': n_train, 'n_eval': n_eval, **run_info,
                       'depths': make_depths(args.base_depth), 'hyp': hyp, 'normalisation': data['stats']},
            'load_seconds': load_seconds,
            'runs': runs,
            'final': {'accuracy_mean': mean, 'accuracy_var': None if math.isnan(var) else var,
                      'accuracy_is': 'ema_val_acc of the last epoch (val_acc where no EMA exists)',
                      'val_acc': [r['val_acc'] for r in runs], 'ema_val_acc': [r['ema_val_acc'] for r in runs],
                      'train_time_seconds': [r['train_time_seconds'] for r in runs]},
            'peakRssBytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            'loadAverageAtEnd': list(os.getloadavg()), 'cpus': os.cpu_count(),
            'note': 'timings are wall clock on a shared 2-core machine with other jobs running; treat them as noisy',
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=1)
        print(f'wrote {args.json}')
    return acc_list


if __name__ == "__main__":
    run_cli()
