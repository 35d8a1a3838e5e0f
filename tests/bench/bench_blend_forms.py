"""Does the way the learnable blend is written change its training cost? (issue 3 (a))

    python tests/bench/bench_blend_forms.py [--width 16] [--reps 3] [--steps 2] [--forms F0 F1 F2]

Times the evaluator's training step (bf16 binary convolutions, channels-last,
torch.compile: the evaluator's CPU path) with the identity and with
blend(sin(x), x), the blend's torch form written four ways:

    F0  beta*a + (1-beta)*b      (primitives/gaaf.py): the beta gradient is two sums
    F1  b + beta*(a - b)         one sum, sum(g * (a - b))
    F2  torch.lerp(b, a, beta)   the same as one aten op
    F3  F1 through an autograd.Function that saves (a - b) in bf16 for the beta sum,
        so the backward need not recompute a and b (inductor's partitioner still does)

Each form is swapped into the primitive set before its model is built (a model
keeps the functions it was built with), and all are timed interleaved in one
process, one thread, images per CPU-second; the overhead is against the
identity timed beside them.
"""

from __future__ import annotations

import argparse
import time

import torch

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
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--forms", nargs="+", choices=sorted(FORMS), default=sorted(FORMS))
    args = ap.parse_args()
    torch.set_num_threads(1)
    blend = get_set("gaaf")["blend"]
    original = blend.torch
    steps = {"x": fast_step_factory("x", args.width, False, True, compile=True, binary_bf16=True)}
    try:
        for name in args.forms:
            form = FORMS[name] or original
            object.__setattr__(blend, "torch", form)  # frozen attrs class: this process only
            steps[name] = fast_step_factory("blend(sin(x), x)", args.width, False, True, compile=True,
                                            binary_bf16=True)
    finally:
        object.__setattr__(blend, "torch", original)
    rates = measure(steps, reps=args.reps, n_steps=args.steps, clock=time.process_time)
    print(f"width {args.width}, images per CPU-second (median of {args.reps} x {args.steps} steps of 128)")
    for name, rate in rates.items():
        print(f"  {name:3s} {rate:7.1f}  {rate / rates['x'] - 1:+.1%}")


if __name__ == "__main__":
    main()
