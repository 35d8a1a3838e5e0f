"""How much of bnn-cifar's seed-to-seed spread is the validation split's own sampling noise?

    python tests/bench/bench_seed_spread.py [--expr x] [--seeds 0 1 2 3] [--set key=value ...]
        [--subsets 5000 10000 ...] [--draws 200] [--save a.npy]
    python tests/bench/bench_seed_spread.py --combine a.npy b.npy [--subsets ...]

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
difference in how good the networks are. A larger validation split does
narrow that part (1/sqrt(n)), but not the spread of the networks themselves:
`--subsets` rescores the same networks on random parts of one larger split
(`--set val_size=40000`), which separates the two (BENCHMARKS.md, session 21:
0.44 of sampling and 0.43 of the networks' own at 5,000 images).
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time

import numpy as np

from gpengine.config import parse_value


def predictions(ev, expr_text: str, seed: int):
    """Train under the evaluator's settings with `seed`; its predicted class for every validation image."""
    import torch

    from evaluators.bnn_cifar.data import Augment
    from evaluators.bnn_cifar.train import train
    from gpengine.expr_text import parse

    if ev.options.threads:  # as `evaluate` does: train() alone would take every core
        torch.set_num_threads(ev.options.threads)
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


def report(right: np.ndarray, subsets: list[int], draws: int) -> None:
    """Spread and disagreement of the networks whose per-image outcomes are the rows of `right`."""
    accs = 100.0 * right.mean(axis=1)
    n = right.shape[1]
    d = statistics.fmean(float((a != b).mean()) for a, b in itertools.combinations(right, 2))
    print(f"mean {accs.mean():.2f}%, sd over {len(accs)} seeds {accs.std(ddof=1):.2f} points")
    print(f"two networks disagree about being right on {100 * d:.1f}% of the {n} validation images: "
          f"the sampling part of the spread is sqrt(d / 2n) = {100 * math.sqrt(d / (2 * n)):.2f} points")
    # Random subsets, the same for every network, as a validation split of that size would be.
    # One draw is not enough: the spread of 8 networks on one subset varies by a factor of two.
    for size in subsets:
        sds, dev_vars = [], []
        for k in range(draws):
            sub = 100.0 * right[:, np.random.default_rng(k).permutation(n)[:size]].mean(axis=1)
            sds.append(sub.std(ddof=1))
            dev_vars.append((sub - accs).var(ddof=1))
        sds = np.array(sds)
        # a subset's score against the whole split's; 1 - size/n undoes drawing from a finite split
        sampling = math.sqrt(statistics.fmean(dev_vars) / (1 - size / n)) if size < n else math.nan
        print(f"  {size} images ({draws} random draws): sd over seeds rms {np.sqrt((sds ** 2).mean()):.2f} "
              f"(10-90% {np.percentile(sds, 10):.2f}-{np.percentile(sds, 90):.2f}), sampling part {sampling:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--expr", default="x")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="bnn-cifar options")
    ap.add_argument("--subsets", nargs="*", type=int, default=[], metavar="N",
                    help="also the spread on random subsets of N images of the validation split")
    ap.add_argument("--draws", type=int, default=200, help="random subsets per --subsets size")
    ap.add_argument("--save", metavar="FILE.npy", help="keep each seed's per-image outcomes, for --combine")
    ap.add_argument("--combine", nargs="+", metavar="FILE.npy",
                    help="train nothing: report over the seeds of these --save files (same settings)")
    args = ap.parse_args()
    if args.combine:
        report(np.concatenate([np.load(f) for f in args.combine]), args.subsets, args.draws)
        return

    from evaluators.bnn_cifar import BnnCifar

    options = {"profile": "quick", "abort": "off"}
    options.update({k: parse_value(v) for k, v in (kv.split("=", 1) for kv in args.set)})
    ev = BnnCifar(**options)
    print(f"options {options}; settings {ev.settings}", flush=True)
    right = []
    for seed in args.seeds:
        t = time.process_time()
        pred, y, final = predictions(ev, args.expr, seed)
        right.append((pred == y).numpy())
        print(f"  `{args.expr}` seed {seed}: {100 * right[-1].mean():.2f}% (the evaluator's fitness {final:.2f}%), "
              f"{time.process_time() - t:.0f} CPU-s", flush=True)
        if args.save:
            np.save(args.save, np.stack(right))
    report(np.stack(right), args.subsets, args.draws)


if __name__ == "__main__":
    main()
