"""Golden fixtures for the CIFAR-10 data preparation, from PyTorch 1.13.

Run from the repository root:  /usr/bin/python3 tools/reference/data_fixtures.py [--cifar-dir DIR]
Writes test/fixtures/data/cifar10-prep.json, recording this script and its arguments.

It reproduces the seed's preparation: ToTensor (uint8 -> float32 / 255), per-channel
torch.std_mean over (N, H, W) of the training images (unbiased std), both splits normalised
with the training statistics, F.one_hot targets, the training split reflect-padded by 2.

- "synthetic": a few random records in the binary-release format (stored base64, so the test
  parses the very same bytes), the statistics, per (image, channel) sums of the prepared
  images, and sampled prepared values (the whole padded border of training image 0 plus random
  interior points), float32 values written with 9 significant digits, indexed in tfjs layout (NHWC, converted only by
  fixture_io's `nhwc`) so the test compares without transposing.
- "real" (when --cifar-dir, default $CIFAR10_DIR, holds the binary release): the
  statistics of the first 256 images of data_batch_1.bin and of the full 50000-image training set.
"""
import argparse
import base64
import os

import torch
import torch.nn.functional as F

from fixture_io import nhwc, source_fields, write
from speedy_convnet import read_cifar10_binary

OUT = os.path.join('test', 'fixtures', 'data')
RECORD = 1 + 3 * 32 * 32
PAD = 2


def parse(raw):
    """Binary-release records -> (uint8 images [N, 3, 32, 32], int64 labels [N])."""
    t = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, RECORD)
    return t[:, 1:].reshape(-1, 3, 32, 32).clone(), t[:, 0].long()


def prepare(train_u8, train_labels, eval_u8, eval_labels):
    """The seed's preparation, in the seed's order (normalise, one-hot, then pad the training split)."""
    train = train_u8.float().div(255)  # ToTensor
    evals = eval_u8.float().div(255)
    std, mean = torch.std_mean(train, dim=(0, 2, 3))
    norm = lambda x: (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    train, evals = norm(train), norm(evals)
    train = F.pad(train, (PAD,) * 4, 'reflect')
    # num_classes=10: the seed infers it from the labels, which is 10 on the full dataset.
    return mean, std, train, evals, F.one_hot(train_labels, 10).float(), F.one_hot(eval_labels, 10).float()


def flat(t):
    # 9 significant digits identify a float32 exactly; float64 sums keep all 17.
    digits = 17 if t.dtype == torch.float64 else 9
    return [float(f'{v:.{digits}g}') for v in t.reshape(-1).tolist()]


def synthetic(gen):
    n_train, n_eval = 3, 2
    def records(n):
        labels = torch.randint(0, 10, (n, 1), generator=gen, dtype=torch.uint8)
        pixels = torch.randint(0, 256, (n, RECORD - 1), generator=gen, dtype=torch.uint8)
        return bytes(torch.cat([labels, pixels], dim=1).reshape(-1).tolist())
    train_raw, eval_raw = records(n_train), records(n_eval)
    tu8, tl = parse(train_raw)
    eu8, el = parse(eval_raw)
    mean, std, train, evals, t_hot, e_hot = prepare(tu8, tl, eu8, el)
    train_nhwc, eval_nhwc = nhwc(train), nhwc(evals)
    size = 32 + 2 * PAD
    # The whole padded border (two rows/columns of reflection and the first real ones), image 0, channel 1.
    border = [(0, h, w, 1) for h in range(size) for w in range(size)
              if h < PAD + 1 or h >= size - PAD - 1 or w < PAD + 1 or w >= size - PAD - 1]
    interior = [tuple(int(v) for v in (torch.randint(0, n_train, (1,), generator=gen).item(),
                                       torch.randint(0, size, (1,), generator=gen).item(),
                                       torch.randint(0, size, (1,), generator=gen).item(),
                                       torch.randint(0, 3, (1,), generator=gen).item())) for _ in range(100)]
    def sample(x, points):
        n, h, w, c = x.shape
        index = [((p[0] * h + p[1]) * w + p[2]) * c + p[3] for p in points]
        return index, flat(x.reshape(-1)[index])
    t_index, t_values = sample(train_nhwc, border + interior)
    e_points = [(int(torch.randint(0, n_eval, (1,), generator=gen)), int(torch.randint(0, 32, (1,), generator=gen)),
                 int(torch.randint(0, 32, (1,), generator=gen)), int(torch.randint(0, 3, (1,), generator=gen)))
                for _ in range(100)]
    e_index, e_values = sample(eval_nhwc, e_points)
    return {
        'trainBase64': base64.b64encode(train_raw).decode(),
        'evalBase64': base64.b64encode(eval_raw).decode(),
        'mean': flat(mean),
        'std': flat(std),
        'trainShape': list(train_nhwc.shape),
        'evalShape': list(eval_nhwc.shape),
        # Sums in float64 of each (image, channel) plane, [N, 3] row-major.
        'trainSums': flat(train.double().sum(dim=(2, 3))),
        'evalSums': flat(evals.double().sum(dim=(2, 3))),
        'trainSampleIndex': t_index,
        'trainSampleValues': t_values,
        'evalSampleIndex': e_index,
        'evalSampleValues': e_values,
        'trainTargets': flat(t_hot),
        'evalTargets': flat(e_hot),
    }


def real(cifar_dir):
    files = [os.path.join(cifar_dir, f'data_batch_{i}.bin') for i in range(1, 6)]
    if not all(os.path.exists(f) for f in files):
        print(f'no binary CIFAR-10 in {cifar_dir}: skipping the real-data statistics')
        return None
    images, _ = read_cifar10_binary(files)
    out = {}
    for key, subset in (('first256', images[:256]), ('full', images)):
        std, mean = torch.std_mean(subset.float().div(255), dim=(0, 2, 3))
        out[key] = {'count': subset.shape[0], 'mean': flat(mean), 'std': flat(std)}
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--cifar-dir', default=os.environ.get('CIFAR10_DIR', ''))
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(args.seed)
    payload = {
        'source': source_fields('tools/reference/data_fixtures.py'),
        'padAmount': PAD,
        'synthetic': synthetic(gen),
    }
    r = real(args.cifar_dir)
    if r is not None:
        payload['real'] = r
    write(OUT, 'cifar10-prep.json', payload)


if __name__ == '__main__':
    main()
