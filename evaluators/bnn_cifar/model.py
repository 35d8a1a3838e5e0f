"""GAAF's binary ResNet-18 for CIFAR, with the evolved activation before every sign.

Layout (GAAF, see shared/reference/GAAF.md): a full-precision stem (BatchNorm
without affine on the input, 3x3 convolution, BatchNorm), four stages of two
basic blocks (widths w, 2w, 4w, 8w; GAAF's w is 64), and a full-precision head
(ReLU, 4x4 average pooling, linear). Every other convolution is binary, the
1x1 downsampling shortcuts included, and each one reads

    sign(clip(AF(x), -c, c))          sign(0) = +1

where AF is the evolved expression with its own per-channel parameters in every
layer. sign(clip(y)) has the sign of y, so the clip only shapes the backward
pass: the straight-through estimator passes the gradient where |AF(x)| <= c and
autograd multiplies it by AF'(x). Weights are the sign of latent real weights
(gradient passed straight through); `clamp_latent_` keeps the latent weights
in [-c, c] after each optimiser step. No scaling factors.

`set_binary_dtype(torch.bfloat16)` runs only the binary convolutions in bf16:
their operands are exactly +-1 in any float format, so the products are exact
and the sums too while they stay within bf16's 8 significant bits (|sum| <= 256,
where nearly all of them lie); the stem, BatchNorm, the activation, the
residual sums and the head stay fp32. Autocast of the whole network would also
round those, which cost accuracy in the quick profile (BENCHMARKS.md, session 11).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evaluators.torch_expr import ExprActivation
from gpengine.expr import Expr
from primitives.registry import PrimitiveSet


def _sign(x: torch.Tensor) -> torch.Tensor:
    """sign with sign(0) = +1: exactly +-1, never 0, so activations stay binary."""
    one = torch.ones((), dtype=x.dtype, device=x.device)
    return torch.where(x >= 0, one, -one)


def clip_mask(y: torch.Tensor, clip: float) -> torch.Tensor:
    """1.0 where |y| <= clip, else 0.0, computed without a comparison.

    c - |y| is >= 0 exactly when |y| <= c (float subtraction keeps the sign), so
    floor(c - |y|) + 1 is >= 1 inside the clip and <= 0 outside; clamping gives
    the 0/1 mask. Why not `y.abs() <= clip`: under torch.compile the partitioner
    saves such a comparison for the backward pass as a bool tensor (the smallest
    thing to save), and inductor's CPU code writes and reads bool tensors one
    byte at a time: on a 2-core AVX-512 CPU the fused BatchNorm + sign kernels
    spent most of their time there. With no bool in the graph it saves floats.
    """
    return torch.clamp(torch.floor(clip - y.abs()) + 1.0, 0.0, 1.0)


class SignSTE(torch.autograd.Function):
    """Forward sign(clip(y, -c, c)) = sign(y); backward: gradient where |y| <= c (Hardtanh's, edges included)."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, clip: float) -> torch.Tensor:
        ctx.clip = clip
        if torch.compiler.is_compiling():
            ctx.save_for_backward(y)  # the mask is recomputed from y, in floats (see clip_mask)
        else:
            ctx.save_for_backward(y.abs() <= clip)  # eager: a bool mask, a quarter of the memory of y
        return _sign(y)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (saved,) = ctx.saved_tensors
        mask = saved if saved.dtype == torch.bool else clip_mask(saved, ctx.clip)
        return grad * mask, None


class WeightSign(torch.autograd.Function):
    """Binary weights: forward sign (sign(0) = +1), backward straight through."""

    @staticmethod
    def forward(ctx, w: torch.Tensor) -> torch.Tensor:
        return _sign(w)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad


def binarize(y: torch.Tensor, clip: float) -> torch.Tensor:
    return SignSTE.apply(y, clip)


class BinaryConv2d(nn.Conv2d):
    """AF, clip and sign on the input; sign of the latent weights; a plain convolution of +-1 values."""

    def __init__(self, act: nn.Module, in_ch: int, out_ch: int, kernel: int, stride: int, clip: float) -> None:
        super().__init__(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.act = act
        self.clip = float(clip)
        self.compute_dtype: torch.dtype | None = None  # e.g. bf16 for the convolution of +-1 values
        # Below 8 input channels a 1x1 stride-s shortcut subsamples its input first and convolves with
        # stride 1: the same numbers (AF and sign act pixel by pixel, and the convolution reads every
        # s-th pixel only). It steps round a torch 2.13.0 bug: on CPUs without AVX-512 the weight
        # gradient of a channels-last 1x1 stride-2 convolution from fewer than 8 channels comes out
        # wrong (by up to 100%) or corrupts the heap, and inductor lays shortcuts out channels-last.
        # From 8 channels on the strided convolution stays: compiled, the shortcut's AF then fuses with
        # the block's first AF, which reads the same input; subsampling first trained sin(x)+x
        # 3-10% slower at width 16 in four runs (BENCHMARKS.md, session 31).
        self.subsample = stride if kernel == 1 and in_ch < 8 else 1
        self.conv_stride = stride // self.subsample
        with torch.no_grad():  # latent weights start inside [-c, c]
            self.weight.clamp_(-self.clip, self.clip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.subsample > 1:
            x = x[:, :, ::self.subsample, ::self.subsample]
        a = binarize(self.act(x), self.clip)
        w = WeightSign.apply(self.weight)
        if self.compute_dtype is None:
            return F.conv2d(a, w, None, self.conv_stride, self.padding)
        dt = self.compute_dtype  # casting +-1 loses nothing; under compile the casts fuse into the neighbours
        return F.conv2d(a.to(dt), w.to(dt), None, self.conv_stride, self.padding).to(x.dtype)


class BasicBlock(nn.Module):
    def __init__(self, make_act, in_ch: int, out_ch: int, stride: int, clip: float) -> None:
        super().__init__()
        self.conv1 = BinaryConv2d(make_act(in_ch), in_ch, out_ch, 3, stride, clip)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = BinaryConv2d(make_act(out_ch), out_ch, out_ch, 3, 1, clip)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                BinaryConv2d(make_act(in_ch), in_ch, out_ch, 1, stride, clip), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.conv1(x))
        out = self.bn2(self.conv2(out))
        return out + self.shortcut(x)


class BinaryResNet18(nn.Module):
    def __init__(self, expr: Expr, pset: PrimitiveSet, width: int = 64, clip: float = 1.3, classes: int = 10) -> None:
        super().__init__()
        self.clip = float(clip)

        def make_act(channels: int) -> nn.Module:
            return ExprActivation(expr, pset, channels)

        self.stem = nn.Sequential(
            nn.BatchNorm2d(3, affine=False),
            nn.Conv2d(3, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )
        blocks = []
        in_ch = width
        for stage, mult in enumerate((1, 2, 4, 8)):
            out_ch = width * mult
            for b in range(2):
                stride = 2 if stage > 0 and b == 0 else 1
                blocks.append(BasicBlock(make_act, in_ch, out_ch, stride, clip))
                in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(in_ch, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.stem(x))
        out = F.avg_pool2d(F.relu(out), out.shape[-1])  # 4x4 on 32x32 inputs
        return self.fc(out.flatten(1))

    def binary_convs(self) -> list[BinaryConv2d]:
        return [m for m in self.modules() if isinstance(m, BinaryConv2d)]

    def activation_parameters(self) -> list[nn.Parameter]:
        """The evolved activation's own learnable parameters, every layer's (empty for a parameter-free one)."""
        return [p for m in self.modules() if isinstance(m, ExprActivation) for p in m.parameters(recurse=False)]

    def set_binary_dtype(self, dtype: torch.dtype | None) -> "BinaryResNet18":
        """Run every binary convolution in `dtype` (None: the input's); everything else keeps its own."""
        for m in self.binary_convs():
            m.compute_dtype = dtype
        return self

    @torch.no_grad()
    def clamp_latent_(self) -> None:
        """Keep every latent binary weight in [-c, c] (after each optimiser step)."""
        torch._foreach_clamp_min_([m.weight for m in self.binary_convs()], -self.clip)
        torch._foreach_clamp_max_([m.weight for m in self.binary_convs()], self.clip)


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
