#!/usr/bin/python3
"""The reference for bench/train_step: the same networks and training step in PyTorch.

One process per network (so peak resident memory is that network's), the step being
forward, cross-entropy, backward and an Adam update, at batch 100 on 3x32x32 input
with 100 classes, timed after warm-up. Prints one line per network in the same format
as bench/train_step:

  network=VGG_38 bn=none ms_median=1093.2 ms_min=1071.0 images_per_s=91.5 gflops=76.8 peak_rss_mb=612.3

  /usr/bin/python3 bench/torch_train_step.py --threads 2 --steps 10 --net VGG_38 --bn before
"""
import argparse
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    """ConvolutionalNetwork of the MLP coursework (2020-21), as tapegrad's tg_vgg builds it."""

    def __init__(self, blocks, bn, stages=3, filters=32, classes=100):
        super().__init__()
        self.bn, self.units = bn, []
        self.entry = nn.Conv2d(3, filters, 3, padding=1, bias=False)
        self.entry_bn = nn.BatchNorm2d(filters)
        mods = []
        for s in range(stages):
            for b in range(blocks):
                self.units.append((False, False))
                self.units.append((False, False))
            self.units.append((True, False))
            self.units.append((True, True))  # pooled before this conv
        for bias, _ in self.units:
            mods.append(nn.Conv2d(filters, filters, 3, padding=1, bias=bias))
            mods.append(nn.BatchNorm2d(filters) if bn != 'none' else nn.Identity())
        self.mods = nn.ModuleList(mods)
        self.linear = nn.Linear(filters, classes)

    def forward(self, x):
        out = F.leaky_relu(self.entry_bn(self.entry(x)))
        for i, (_, pool_before) in enumerate(self.units):
            if pool_before:
                out = F.avg_pool2d(out, 2)
            out = self.mods[2 * i](out)
            if self.bn == 'before':
                out = self.mods[2 * i + 1](out)
            out = F.leaky_relu(out)
            if self.bn == 'after':
                out = self.mods[2 * i + 1](out)
        out = F.avg_pool2d(out, out.shape[-1]).flatten(1)
        return self.linear(out)


def gflop_per_step(net, batch=100, size=32):
    """Multiply-adds x 2 of conv and linear layers, forward + backward (3x forward)."""
    macs, hw = net.entry.weight.numel() * size * size, size * size
    for i, (_, pool_before) in enumerate(net.units):
        if pool_before:
            hw //= 4
        macs += net.mods[2 * i].weight.numel() * hw
    macs += net.linear.weight.numel()
    return 3 * 2 * macs * batch / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--net', default='VGG_08', choices=['VGG_08', 'VGG_38'])
    ap.add_argument('--bn', default='none', choices=['none', 'before', 'after'])
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--batch', type=int, default=100)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = Net(5 if a.net == 'VGG_38' else 0, a.bn)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.randn(a.batch, 3, 32, 32)
    y = torch.randint(0, 100, (a.batch,))
    times = []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print('network=%s bn=%s ms_median=%.1f ms_min=%.1f images_per_s=%.1f gflops=%.1f peak_rss_mb=%.1f'
          % (a.net, a.bn, 1e3 * med, 1e3 * min(times), a.batch / med,
             gflop_per_step(net, a.batch) / med, rss))
    return 0


if __name__ == '__main__':
    sys.exit(main())
