"""Training speed of bnn-cifar: activation overhead, and against straightforward research code.

    python tests/bench/bench_bnn_speed.py [--width 16] [--steps 6] [--reps 3] [--threads 0] [--clock wall|cpu]
                                          [--device cpu|cuda]

(a) training images/s of the evaluator's own training step with the identity
    and three GAAF-style activations: sin(x)+x, x*sigmoid(x) (gate(x, x)) and
    the learnable blend(sin(x), x); overhead relative to the identity.
    A variant ending in -compiled runs the model through torch.compile (the
    compile happens in the untimed warm-up step; `compile=auto` pays it per evaluation);
    -compiled-boolmask is the same with the STE as it was before session 5 (a bool
    clip mask saved for the backward pass, which inductor's CPU code stores bytewise);
    -graphs compiles with CUDA graphs (mode reduce-overhead, the evaluator's default on a GPU).
    A -subsampled suffix makes every downsampling shortcut subsample its input before AF and
    sign, then convolve with stride 1 (the model does so only below 8 channels; session 31).
(b) the same network written the way research code usually is: fp32 eager,
    the activation expanded op by op with parameters expanded to the input's
    shape, hardtanh + sign with a detach STE, and binary weights written into
    `.data` from a saved full-precision copy (BinaryNet style); side by side.

Variants run interleaved, `reps` times each, and the median is reported: the
machine's cores are shared, so a single timing is noise. Synthetic batches
(speed does not depend on pixel values); the optimiser step, the schedule and
the latent clamp are included, data augmentation is not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from evaluators.bnn_cifar.evaluator import _cpu_has_fast_bf16
from evaluators.bnn_cifar.model import BinaryConv2d, BinaryResNet18, SignSTE, WeightSign, _sign
from gpengine.expr_text import parse
from primitives import get_set

EXPRS = ["x", "sin(x) + x", "gate(x, x)", "blend(sin(x), x)"]


# -- (b) research-code version of the same network -----------------------------------------
class ResearchAF(nn.Module):
    """The activation written out by hand, parameters expanded to the input's shape."""

    KINDS = ("x", "sin(x) + x", "gate(x, x)", "blend(sin(x), x)", "shift(x)")

    def __init__(self, kind: str, channels: int) -> None:
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"no research-code form of {kind!r}; written by hand: {', '.join(self.KINDS)}")
        self.kind = kind
        self.beta = nn.Parameter(torch.ones(1, channels, 1, 1)) if kind == "blend(sin(x), x)" else None
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1)) if kind == "shift(x)" else None

    def forward(self, x):
        if self.kind == "x":
            return x
        if self.kind == "sin(x) + x":
            return torch.sin(x) + x
        if self.kind == "gate(x, x)":
            return x * torch.sigmoid(x)
        if self.kind == "shift(x)":
            return x + self.bias.expand_as(x)
        beta = self.beta.expand_as(x)
        return beta * torch.sin(x) + (1 - beta) * x


class ResearchBinConv(nn.Conv2d):
    def __init__(self, kind, cin, cout, k, stride):
        super().__init__(cin, cout, k, stride, k // 2, bias=False)
        self.af = ResearchAF(kind, cin)

    def forward(self, x):
        a = F.hardtanh(self.af(x), -1.3, 1.3)
        s = torch.sign(a)
        s = torch.where(s == 0, torch.ones_like(s), s)
        a = a + (s - a).detach()  # STE: the hardtanh's gradient
        if not hasattr(self.weight, "org"):
            self.weight.org = self.weight.data.clone()
        self.weight.data = torch.where(self.weight.org >= 0, 1.0, -1.0)
        return F.conv2d(a, self.weight, None, self.stride, self.padding)


class ResearchBlock(nn.Module):
    def __init__(self, kind, cin, cout, stride):
        super().__init__()
        self.c1, self.b1 = ResearchBinConv(kind, cin, cout, 3, stride), nn.BatchNorm2d(cout)
        self.c2, self.b2 = ResearchBinConv(kind, cout, cout, 3, 1), nn.BatchNorm2d(cout)
        self.sc = nn.Sequential()
        if stride != 1 or cin != cout:
            self.sc = nn.Sequential(ResearchBinConv(kind, cin, cout, 1, stride), nn.BatchNorm2d(cout))

    def forward(self, x):
        return self.b2(self.c2(self.b1(self.c1(x)))) + self.sc(x)


class ResearchResNet18(nn.Module):
    def __init__(self, kind, width):
        super().__init__()
        self.stem = nn.Sequential(nn.BatchNorm2d(3, affine=False), nn.Conv2d(3, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width))
        layers, cin = [], width
        for i, m in enumerate((1, 2, 4, 8)):
            for b in range(2):
                layers.append(ResearchBlock(kind, cin, width * m, 2 if i and not b else 1))
                cin = width * m
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, 10)

    def forward(self, x):
        out = F.avg_pool2d(F.relu(self.layers(self.stem(x))), 4)
        return self.fc(out.view(out.size(0), -1))


def research_step(model, opt, x, y):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    for p in model.parameters():  # BinaryNet: restore the real weights, step, clamp, keep a copy
        if hasattr(p, "org"):
            p.data.copy_(p.org)
    opt.step()
    for p in model.parameters():
        if hasattr(p, "org"):
            p.org.copy_(p.data.clamp_(-1.3, 1.3))
    return loss


# -- the evaluator's training step ------------------------------------------------------------
class BoolMaskSTE(SignSTE):
    """The sign/STE as it was before session 5: a bool clip mask saved even under torch.compile
    (SignSTE's backward takes a saved bool mask as it is)."""

    @staticmethod
    def forward(ctx, y, clip):
        ctx.save_for_backward(y.abs() <= clip)
        return _sign(y)


class BoolMaskConv(BinaryConv2d):
    def forward(self, x):
        a = BoolMaskSTE.apply(self.act(x), self.clip)
        return F.conv2d(a, WeightSign.apply(self.weight), None, self.stride, self.padding)


def fast_step_factory(expr: str, width: int, amp: bool, channels_last: bool, device: str = "cpu",
                      compile: bool = False, bool_mask: bool = False, binary_bf16: bool = False,
                      graphs: bool = False, subsampled_shortcut: bool = False):
    model = BinaryResNet18(parse(expr), get_set("gaaf"), width=width).to(device)
    if subsampled_shortcut:  # every 1x1 strided shortcut subsamples first (the model: below 8 channels only)
        for m in model.binary_convs():
            if m.kernel_size == (1, 1):
                m.subsample, m.conv_stride = m.subsample * m.conv_stride, 1
    if binary_bf16:
        model.set_binary_dtype(torch.bfloat16)
    if bool_mask:  # this model instance only: the old STE, for a before/after comparison
        for m in model.modules():
            if isinstance(m, BinaryConv2d):
                m.__class__ = BoolMaskConv
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile or graphs:  # each model is compiled once, at the untimed warm-up step; many live at once here
        torch._dynamo.config.recompile_limit = 64
    forward = torch.compile(model, mode="reduce-overhead" if graphs else None) if compile or graphs else model
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=10_000)

    def step(x, y):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if graphs:  # each step a new CUDA-graph iteration, as in the evaluator
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(device, torch.bfloat16, enabled=amp):
            logits = forward(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        model.clamp_latent_()
        return loss

    return step


def research_step_factory(expr: str, width: int, device: str = "cpu"):
    model = ResearchResNet18(expr, width).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    return lambda x, y: research_step(model, opt, x, y)


def measure(steps: dict, reps: int, n_steps: int, batch: int = 128, clock=time.perf_counter,
            device: str = "cpu") -> dict[str, float]:
    torch.manual_seed(0)
    x, y = torch.randn(batch, 3, 32, 32, device=device), torch.randint(0, 10, (batch,), device=device)
    if device == "cuda":  # a GPU runs asynchronously: time only finished work
        wall = clock

        def clock():
            torch.cuda.synchronize()
            return wall()
    for name, step in list(steps.items()):  # warm-up (compiles); a variant that fails is dropped, not fatal
        try:
            for _ in range(3):  # CUDA graphs are recorded at the second or third call, not the first
                step(x, y)
        except Exception as e:  # noqa: BLE001 - report and go on with the other variants
            print(f"  {name}: failed at warm-up: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            del steps[name]
    rates: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(reps):
        for name, step in steps.items():
            t = clock()
            for _ in range(n_steps):
                step(x, y)
            rates[name].append(batch * n_steps / (clock() - t))
    return {k: statistics.median(v) for k, v in rates.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, nargs="+", default=[16])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--exprs", nargs="+", default=EXPRS)
    ap.add_argument("--variants", nargs="+", default=["fp32", "fp32-cl", "bf16", "bf16-cl"],
                    help="evaluator training-step variants to time (fp32/bf16/binbf16 (bf16 in the binary convolutions only), -cl: channels-last, "
                         "-compiled: torch.compile, e.g. fp32-compiled, fp32-cl-compiled; -graphs: torch.compile with "
                         "CUDA graphs (mode reduce-overhead), e.g. fp32-cl-graphs; a -boolmask suffix: the sign/STE "
                         "before session 5, which saved a bool mask under compile too; a -subsampled suffix: "
                         "every downsampling shortcut subsamples before AF and sign, then convolves with stride 1)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: images per CPU-second of this process (robust on a shared machine; use with --threads 1)")
    args = ap.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: {_cpu_has_fast_bf16()}"
          + (f", {torch.cuda.get_device_name()}" if args.device == "cuda" else ""))
    for width in args.width:
        steps = {}
        for expr in args.exprs:
            for v in args.variants:
                steps[f"{expr} | {v}"] = fast_step_factory(expr, width, v.startswith("bf16"), "-cl" in v, args.device,
                                                           compile="-compiled" in v, bool_mask="-boolmask" in v,
                                                           binary_bf16=v.startswith("binbf16"),
                                                           graphs="-graphs" in v,
                                                           subsampled_shortcut=v.endswith("-subsampled"))
            steps[f"{expr} | research fp32"] = research_step_factory(expr, width, args.device)
        rates = measure(steps, args.reps, args.steps, clock=clock, device=args.device)
        unit = "CPU-second" if args.clock == "cpu" else "second"
        print(f"\nwidth {width}: training images per {unit} (median of {args.reps} x {args.steps} steps of 128), "
              f"load average {os.getloadavg()[0]:.1f}")
        nan = float("nan")
        for v in args.variants + ["research fp32"]:
            base = rates.get(f"x | {v}", nan)
            row = "  ".join(f"{e}: {rates.get(f'{e} | {v}', nan):6.0f} ({rates.get(f'{e} | {v}', nan) / base - 1:+.0%})"
                            for e in args.exprs)
            print(f"  {v:14s} {row}")
        for v in args.variants:
            row = "  ".join(f"{e}: {rates.get(f'{e} | {v}', nan) / rates.get(f'{e} | research fp32', nan):.2f}x"
                            for e in args.exprs)
            print(f"  speedup {v} vs research: {row}")


if __name__ == "__main__":
    main()
