"""The issue's reference protocol run with research-style code, beside the evaluator, on this machine.

    python tests/bench/bench_bnn_reference.py [--seeds 0] [--augment crop-flip] [--threads 2] [--evaluator]

Trains the research-code version of the network (bench_bnn_speed.py: fp32 eager,
BinaryNet-style `.data` weights, detach STE) with the identity activation on the
`quick` data (width 16, 10,000 stratified training images, 5,000 validation
images from the training set), 4 epochs, Adam 5e-3 with a one-cycle cosine
schedule, batch 128, random crop + flip: the protocol the issue's reference
figures (45.55% +- 0.20 in about 80 s) were measured with, on another machine.
Running it here gives the time and accuracy that protocol has on *this* machine,
so the evaluator's `quick` figures can be read against it. With `--evaluator`
the evaluator's own quick evaluation of the identity runs after each seed.
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_bnn_speed import ResearchResNet18, research_step

from evaluators.bnn_cifar import BnnCifar
from evaluators.bnn_cifar.data import Augment
from gpengine.expr_text import parse


@torch.no_grad()
def accuracy(model, data, aug) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(data.eval_y), 1000):  # research code evaluates in large batches
        correct += (model(aug.normalize(data.eval_x[i : i + 1000])).argmax(1) == data.eval_y[i : i + 1000]).sum().item()
    return 100.0 * correct / len(data.eval_y)


def train_research(data, seed: int, augment: str, epochs: int = 4, batch: int = 128, lr: float = 5e-3):
    torch.manual_seed(seed)
    model = ResearchResNet18("x", 16)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = len(data.train_y) // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps, anneal_strategy="cos")
    aug, gen = Augment(torch.device("cpu"), mode=augment), torch.Generator().manual_seed(seed)
    curve = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(data.train_y), generator=gen)
        for s in range(steps):
            idx = order[s * batch : (s + 1) * batch]
            research_step(model, opt, aug(data.train_x[idx], gen), data.train_y[idx])
            sched.step()
        curve.append(accuracy(model, data, aug))
    return curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--augment", default="crop-flip", choices=("crop-flip", "flip", "none"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--evaluator", action="store_true", help="also run the evaluator's quick profile per seed")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ev = BnnCifar(profile="quick", abort="off", threads=args.threads)
    data = ev.data()
    print(f"quick data: {len(data.train_y)} train / {len(data.eval_y)} validation; torch threads {args.threads}")
    for seed in args.seeds:
        t = time.perf_counter()
        curve = train_research(data, seed, args.augment)
        wall = time.perf_counter() - t
        print(f"research code, {args.augment}, seed {seed}: {curve[-1]:.2f}% in {wall:.0f} s "
              f"(per epoch {', '.join(f'{a:.2f}' for a in curve)})", flush=True)
        if args.evaluator:
            r = ev.evaluate(parse("x"), seed=seed)
            print(f"evaluator quick ({ev.settings['augment']}, compile {ev.compile}), seed {seed}: {r.fitness:.2f}% "
                  f"in {r.cost:.0f} s (per epoch {', '.join(f'{a:.2f}' for a in r.curves['val_accuracy'])})",
                  flush=True)


if __name__ == "__main__":
    main()
