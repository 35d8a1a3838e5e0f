"""How much of bnn-cifar's seed-to-seed spread is the validation split's own sampling noise?

    python tests/bench/bench_seed_spread.py [--expr x] [--seeds 0 1 2 3] [--set key=value ...]
        [--subsets 5000 10000 ...] [--save a.npy]
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
difference in how good the networks are, if a network's outcomes on different
images were uncorrelated.

They are not: `--subsets` scores the same networks on nested parts of one
larger split, and with `--set val_size=40000` the spread stayed at 0.39-0.46
points from 5,000 to 40,000 images while sqrt(d / 2n) fell from 0.44 to 0.16
(BENCHMARKS.md, session 21). A network that gets more of one kind of image
right gets fewer of another, so its errors cancel within a split; the spread
is how differently the networks learned, which a larger split cannot narrow.
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


def report(right: np.ndarray, subsets: list[int]) -> None:
    """Spread and disagreement of the networks whose per-image outcomes are the rows of `right`."""
    def stats(r: np.ndarray) -> tuple[np.ndarray, float]:
        accs = 100.0 * r.mean(axis=1)
        d = statistics.fmean(float((a != b).mean()) for a, b in itertools.combinations(r, 2))
        return accs, d

    accs, d = stats(right)
    n = right.shape[1]
    print(f"mean {accs.mean():.2f}%, sd over {len(accs)} seeds {accs.std(ddof=1):.2f} points")
    print(f"two networks disagree about being right on {100 * d:.1f}% of the {n} validation images: "
          f"the sampling part of the spread is sqrt(d / 2n) = {100 * math.sqrt(d / (2 * n)):.2f} points")
    # One shuffle shared by every seed, so each size scores all networks on the same images, as a
    # validation split of that size would.
    order = np.random.default_rng(0).permutation(n)
    for size in subsets:
        accs_n, d_n = stats(right[:, order[:size]])
        print(f"  first {size} images of a shuffle: mean {accs_n.mean():.2f}%, sd {accs_n.std(ddof=1):.2f} "
              f"points, sampling part {100 * math.sqrt(d_n / (2 * size)):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--expr", default="x")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="bnn-cifar options")
    ap.add_argument("--subsets", nargs="*", type=int, default=[], metavar="N",
                    help="also the spread on the first N images of one fixed shuffle of the validation split")
    ap.add_argument("--save", metavar="FILE.npy", help="keep each seed's per-image outcomes, for --combine")
    ap.add_argument("--combine", nargs="+", metavar="FILE.npy",
                    help="train nothing: report over the seeds of these --save files (same settings)")
    args = ap.parse_args()
    if args.combine:
        report(np.concatenate([np.load(f) for f in args.combine]), args.subsets)
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
    report(np.stack(right), args.subsets)


if __name__ == "__main__":
    main()
