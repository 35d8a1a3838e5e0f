"""Does the way the learnable blend is written change its training cost? (issue 3 (a))

    python tests/bench/bench_blend_forms.py [--width 16] [--reps 3] [--steps 2] [--forms F0 F1 F2]
        [--binary auto|bf16|fp32] [--nchw]

Times the evaluator's training step (binary convolutions in bf16 where the CPU
computes it natively, in fp32 elsewhere, as `amp=auto` does; channels-last,
or NCHW with --nchw, the evaluator's CPU default; torch.compile) with the
identity and with blend(sin(x), x), the blend's torch form written five ways:

    F0  beta*a + (1-beta)*b      (primitives/gaaf.py): the beta gradient is two sums
    F1  b + beta*(a - b)         one sum, sum(g * (a - b))
    F2  torch.lerp(b, a, beta)   the same as one aten op
    F3  F1 through an autograd.Function that saves (a - b) in bf16 for the beta sum,
        so the backward need not recompute a and b (inductor's partitioner still does)
    F4  F0 with beta expanded over the batch, so its gradient is summed in two stages,
        over height x width per image and channel first (the grouping inductor's CPU code
        can fuse with a pointwise pass over NCHW), then over the batch

Each form is swapped into the primitive set before its model is built (a model
keeps the functions it was built with), and all are timed interleaved in one
process, one thread, images per CPU-second; the overhead is against the
identity timed beside them.
"""

from __future__ import annotations

import argparse
import time

import torch

from evaluators.bnn_cifar.evaluator import _cpu_has_fast_bf16
from primitives import get_set
from bench_bnn_speed import fast_step_factory, measure


class _BlendSavedDifference(torch.autograd.Function):
    """b + beta*(a - b), keeping (a - b) in bf16 for the backward: the gradient it meets is bf16 already."""

    @staticmethod
    def forward(ctx, a, b, beta):
        d = a - b
        ctx.save_for_backward(d.to(torch.bfloat16), beta)
        return b + beta * d

    @staticmethod
    def backward(ctx, grad):
        d, beta = ctx.saved_tensors
        grad_a = grad * beta
        return grad_a, grad - grad_a, (grad * d).sum_to_size(beta.shape)


FORMS = {
    "F0": None,  # the primitive set's own form, whatever it is now
    "F1": lambda t, a, b, beta: b + beta * (a - b),
    "F2": lambda t, a, b, beta: t.lerp(b, a, beta),
    "F3": lambda t, a, b, beta: _BlendSavedDifference.apply(a, b, beta),
    "F4": lambda t, a, b, beta: _blend_expanded(a, b, beta),
}


def _blend_expanded(a, b, beta):
    beta = beta.expand((a.shape[0],) + tuple(beta.shape[1:]))  # (1, C, 1, 1) -> (N, C, 1, 1)
    return beta * a + (1.0 - beta) * b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--forms", nargs="+", choices=sorted(FORMS), default=sorted(FORMS))
    ap.add_argument("--binary", choices=("auto", "bf16", "fp32"), default="auto",
                    help="dtype of the binary convolutions (auto: bf16 where the CPU has it natively)")
    ap.add_argument("--nchw", action="store_true", help="NCHW instead of channels-last (the evaluator's CPU default)")
    args = ap.parse_args()
    bf16 = args.binary == "bf16" or (args.binary == "auto" and _cpu_has_fast_bf16())
    channels_last = not args.nchw
    torch.set_num_threads(1)
    blend = get_set("gaaf")["blend"]
    original = blend.torch
    steps = {"x": fast_step_factory("x", args.width, False, channels_last, compile=True, binary_bf16=bf16)}
    try:
        for name in args.forms:
            form = FORMS[name] or original
            object.__setattr__(blend, "torch", form)  # frozen attrs class: this process only
            steps[name] = fast_step_factory("blend(sin(x), x)", args.width, False, channels_last, compile=True,
                                            binary_bf16=bf16)
    finally:
        object.__setattr__(blend, "torch", original)
    rates = measure(steps, reps=args.reps, n_steps=args.steps, clock=time.process_time)
    layout = "channels-last" if channels_last else "NCHW"
    print(f"width {args.width}, {'bf16' if bf16 else 'fp32'} binary convolutions, {layout}, "
          f"images per CPU-second (median of {args.reps} x {args.steps} steps of 128)")
    for name, rate in rates.items():
        print(f"  {name:3s} {rate:7.1f}  {rate / rates['x'] - 1:+.1%}")


if __name__ == "__main__":
    main()
