"""bnn-cifar accuracy diagnosis: the quick profile with structural variants of the network.

    python tests/bench/bench_bnn_variants.py VARIANT EXPR SEED [STOP_AFTER] [KEY=VALUE ...]

VARIANT is ``base`` (the evaluator's network) or a '+'-joined set of:
``fpsc`` full-precision 1x1 downsampling shortcuts (conv + BN, no sign),
``birealres`` a residual around every binary convolution (Bi-Real style),
``htres`` Hardtanh(-c, c) on each block's output (IR-Net style: the residual stream stays bounded),
``nocm`` OneCycleLR without its Adam beta1 cycling, ``warm10`` a 10% warm-up
instead of OneCycleLR's 30%, ``bnm01`` BatchNorm momentum 0.01 instead of 0.1,
``winit10`` latent binary weights initialised 10x larger (then clipped to [-c, c]), ``winit01`` 10x
smaller, ``noaug`` no augmentation (normalisation only) and ``fliponly`` flips
without crops (shorthands for ``augment=none`` and ``augment=flip``). KEY=VALUE pairs override bnn-cifar options (``lr=0.01``,
``batch_size=64``, ``threads=1``). Every run also reports
the final accuracy with BatchNorm in training mode (batch statistics of
1,000 validation images) beside the evaluator's eval-mode figure. STOP_AFTER ends the run
after that many epochs of the 4-epoch schedule. Prints the per-epoch
validation accuracy as it goes; one run takes 2-15 minutes on the shared
2-core box. The variants are monkeypatched here, not options of the evaluator.
"""

from __future__ import annotations

import os
import sys
import time

import torch
from torch import nn

from evaluators.bnn_cifar import BnnCifar
from evaluators.bnn_cifar import model as M
from evaluators.bnn_cifar import train as T
from gpengine.config import parse_value
from gpengine.expr_text import parse


def _scale_latent_weights(factor: float) -> None:
    """Binary convolutions start with latent weights `factor` times their usual init, clipped to [-c, c]."""
    orig_conv = M.BinaryConv2d.__init__

    def conv(self, *a, **k):
        orig_conv(self, *a, **k)
        with torch.no_grad():
            self.weight.mul_(factor).clamp_(-self.clip, self.clip)

    M.BinaryConv2d.__init__ = conv


def patch(variant: str) -> None:
    if "fpsc" in variant:
        orig_init = M.BasicBlock.__init__

        def init(self, make_act, in_ch, out_ch, stride, clip):
            orig_init(self, make_act, in_ch, out_ch, stride, clip)
            if stride != 1 or in_ch != out_ch:
                self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

        M.BasicBlock.__init__ = init
    if "birealres" in variant:
        def forward(self, x):
            out = self.bn1(self.conv1(x)) + self.shortcut(x)
            return self.bn2(self.conv2(out)) + out

        M.BasicBlock.forward = forward
    if "htres" in variant:
        orig_forward = M.BasicBlock.forward

        def bounded(self, x):
            return torch.nn.functional.hardtanh(orig_forward(self, x), -self.conv1.clip, self.conv1.clip)

        M.BasicBlock.forward = bounded
    if "nocm" in variant:
        orig = torch.optim.lr_scheduler.OneCycleLR.__init__

        def one_cycle(self, *a, **k):
            orig(self, *a, **{**k, "cycle_momentum": False})

        torch.optim.lr_scheduler.OneCycleLR.__init__ = one_cycle
    if "warm10" in variant:
        orig_warm = torch.optim.lr_scheduler.OneCycleLR.__init__

        def warm(self, *a, **k):
            orig_warm(self, *a, **{**k, "pct_start": 0.1})

        torch.optim.lr_scheduler.OneCycleLR.__init__ = warm
    if "bnm01" in variant:
        orig_bn = nn.BatchNorm2d.__init__

        def bn(self, *a, **k):
            orig_bn(self, *a, **{**k, "momentum": 0.01})

        nn.BatchNorm2d.__init__ = bn
    for name, factor in (("winit10", 10.0), ("winit01", 0.1)):
        if name in variant:
            _scale_latent_weights(factor)


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    variant, expr, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rest = sys.argv[4:]
    stop = int(rest.pop(0)) if rest and "=" not in rest[0] else None
    overrides = {k: parse_value(v) for k, v in (kv.split("=", 1) for kv in rest)}
    for name, mode in (("noaug", "none"), ("fliponly", "flip")):  # evaluator options since session 4
        if name in variant:
            overrides.setdefault("augment", mode)
    patch(variant)
    ev = BnnCifar(**{"profile": "quick", "abort": "off", **overrides})
    data = ev.data()
    model = ev.build_model(parse(expr), seed)
    t = time.perf_counter()
    out = T.train(model, data, ev.train_config(ev.settings["epochs"]), seed, stop_after=stop,
                  on_epoch=lambda e, m: print(f"  epoch {e}: {m}", flush=True))
    cfg = ev.train_config(ev.settings["epochs"])
    model.eval = lambda: model.train()  # score with batch statistics instead of running statistics
    train_bn_acc, _ = T.evaluate_accuracy(model, data, T.Augment(torch.device(ev.device)), cfg)
    print(f"  train-mode BN at evaluation: {train_bn_acc:.2f}", flush=True)
    print(f"RESULT {variant} {expr!r} seed {seed} {overrides}: {out.status} {out.final_accuracy:.2f} "
          f"curve {out.curves['val_accuracy']} {time.perf_counter() - t:.0f} s {out.images_per_second:.0f} img/s "
          f"load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
