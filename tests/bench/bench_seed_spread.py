"""How much of bnn-cifar's seed-to-seed spread is the validation split's own sampling noise?

    python tests/bench/bench_seed_spread.py [--expr x] [--seeds 0 1 2 3] [--set key=value ...]

Trains the activation once per seed (the `quick` profile unless `--set
profile=...`; abort off), keeps each network's predictions on the validation
split, and prints the accuracies, their standard deviation across seeds, and
how often two networks differ on whether an image is right.

Why that last figure: accuracy is the mean of n per-image outcomes c_i (1 if
right). Over training seeds, Var(accuracy) = (1/n^2) * sum_i Var(c_i) plus the
covariances between images. For two independently trained networks,
E[(c_i - c'_i)^2] = 2 Var(c_i), so the share d of images on which two networks
disagree about being right gives the first term: sqrt(d / (2n)) is the spread
that comes from which images a network happens to get right, before any
difference in how good the networks are. No training recipe lowers it except
by making networks agree more; a larger validation split does (1/sqrt(n)).
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time

from gpengine.config import parse_value


def predictions(ev, expr_text: str, seed: int):
    """Train under the evaluator's settings with `seed`; its predicted class for every validation image."""
    import torch

    from evaluators.bnn_cifar.data import Augment
    from evaluators.bnn_cifar.train import train
    from gpengine.expr_text import parse

    data = ev.data()
    cfg = ev.train_config(ev.settings["epochs"])
    model = ev.build_model(parse(expr_text, ev.pset), seed)
    out = train(model, data, cfg, seed)
    aug = Augment(torch.device(cfg.device), mode=cfg.augment)
    model.eval()
    with torch.inference_mode():
        pred = torch.cat([model(aug.normalize(data.eval_x[i : i + 500])).argmax(1)
                          for i in range(0, len(data.eval_y), 500)])
    return pred.cpu(), data.eval_y.cpu(), out.final_accuracy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--expr", default="x")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="bnn-cifar options")
    args = ap.parse_args()

    from evaluators.bnn_cifar import BnnCifar

    options = {"profile": "quick", "abort": "off"}
    options.update({k: parse_value(v) for k, v in (kv.split("=", 1) for kv in args.set)})
    ev = BnnCifar(**options)
    print(f"options {options}; settings {ev.settings}", flush=True)
    right, accs = [], []
    for seed in args.seeds:
        t = time.process_time()
        pred, y, final = predictions(ev, args.expr, seed)
        right.append(pred == y)
        accs.append(100.0 * right[-1].float().mean().item())
        print(f"  `{args.expr}` seed {seed}: {accs[-1]:.2f}% (the evaluator's fitness {final:.2f}%), "
              f"{time.process_time() - t:.0f} CPU-s", flush=True)
    n = len(right[0])
    d = statistics.fmean((a != b).float().mean().item() for a, b in itertools.combinations(right, 2))
    print(f"mean {statistics.fmean(accs):.2f}%, sd over {len(accs)} seeds {statistics.stdev(accs):.2f} points")
    print(f"two networks disagree about being right on {100 * d:.1f}% of the {n} validation images: "
          f"the sampling part of the spread is sqrt(d / 2n) = {100 * math.sqrt(d / (2 * n)):.2f} points")


if __name__ == "__main__":
    main()
