"""bnn-cifar's binary ResNet-18 with a stem for one grey channel.

Everything but the stem is `evaluators.bnn_cifar.model.BinaryResNet18`: the
same binary blocks with the evolved activation before every sign, the same
head (its average pool adapts to the feature map size).

The stem: bnn-cifar's training loop normalises every batch with CIFAR's
three per-channel constants, which broadcasts a one-channel batch to three
channels that are the same grey image under three affine maps. The stem keeps
the first, and its input BatchNorm (no affine, as in GAAF's stem) standardises
it, which cancels any affine map: the network sees the standardised grey
image, exactly as with Fashion-MNIST's own mean and std.
"""

from __future__ import annotations

import torch
from torch import nn

from evaluators.bnn_cifar.model import BinaryResNet18
from gpengine.expr import Expr
from primitives.registry import PrimitiveSet


class FirstChannel(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1]


def grey_stem(width: int) -> nn.Sequential:
    return nn.Sequential(
        FirstChannel(),
        nn.BatchNorm2d(1, affine=False),
        nn.Conv2d(1, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
    )


class GreyBinaryResNet18(BinaryResNet18):
    def __init__(self, expr: Expr, pset: PrimitiveSet, width: int = 64, clip: float = 1.3, classes: int = 10) -> None:
        super().__init__(expr, pset, width=width, clip=clip, classes=classes)
        self.stem = grey_stem(width)
