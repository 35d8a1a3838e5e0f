"""The bnn-cifar `quick` profile on the real CIFAR-10: wall time, accuracy, seed spread.

    python tests/bench/bench_bnn_quick.py [--exprs x "sin(x)"] [--seeds 0 1 2] [--budget 1.0] [--set key=value ...]
                                          [--hold order|init [--held-seed 1000]]

Needs the real data where bnn-cifar looks for it (``--set data_dir=...``,
$GPENGINE_DATA or the user cache); make it with
``python ../shared/datasets/make_cifar10.py ~/.cache/gpengine/data``.
Each evaluation runs in this one process, as in a long-lived worker (data
loaded once). Early abort is off unless ``--set abort=on``, so every number
is a full evaluation. ``--budget`` below 1 measures a low rung of
successive halving (what it shortens: ``--set budget_scales=...``).

``--hold`` splits what an evaluation seed drives, to see where the seed
spread comes from: ``--hold order`` keeps the data order and augmentation
of ``--held-seed`` for every seed (the seed then sets only the initial
weights), ``--hold init`` keeps the initial weights of ``--held-seed`` (the
seed then sets only the order and augmentation). The evaluator itself has
no such split; this script patches it in its own process.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import evaluators.bnn_cifar.evaluator as bnn_evaluator
from evaluators.bnn_cifar import BnnCifar
from gpengine.config import parse_value
from gpengine.expr_text import parse


def hold(what: str, held_seed: int) -> None:
    """Patch this process's evaluator so the evaluation seed drives only one of init / data order."""
    if what == "order":  # train() draws the order and the augmentation from the seed it is given
        train = bnn_evaluator.train
        bnn_evaluator.train = lambda model, data, cfg, seed, *a, **kw: train(model, data, cfg, held_seed, *a, **kw)
    elif what == "init":  # build_model seeds torch's generator for the initial weights
        build = BnnCifar.build_model
        BnnCifar.build_model = lambda self, expr, seed: build(self, expr, held_seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--exprs", nargs="+", default=["x"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--budget", type=float, default=1.0, help="fraction of a full evaluation (a low rung below 1)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--hold", choices=["order", "init"], help="keep this part of the run at --held-seed for every seed")
    ap.add_argument("--held-seed", type=int, default=1000)
    args = ap.parse_args()
    if args.hold:
        hold(args.hold, args.held_seed)
    options = {"profile": "quick", "abort": "off"}
    options.update({k: parse_value(v) for k, v in (kv.split("=", 1) for kv in args.set)})
    t = time.perf_counter()
    ev = BnnCifar(**options)
    info = ev.dataset()
    print(f"options {options}; resolved {ev.profile}: {ev.settings}; amp {ev.amp}; binary bf16 {ev.binary_bf16}; channels_last {ev.channels_last}; "
          f"compile {ev.compile}; cost clock {ev.options.cost_clock}; budget {args.budget}; "
          f"torch threads in an evaluation {ev.options.threads or torch.get_num_threads()}"
          + (f"; {args.hold} held at seed {args.held_seed}" if args.hold else ""))  # evaluate() sets them
    print(f"data: {info.name}, {info.n_train} train / {info.n_validation} scored, loaded in {time.perf_counter() - t:.1f} s")
    for text in args.exprs:
        accs, walls = [], []
        for seed in args.seeds:
            r = ev.evaluate(parse(text), budget=args.budget, seed=seed)
            accs.append(r.fitness)
            walls.append(r.cost)
            curve = ", ".join(f"{a:.2f}" for a in r.curves.get("val_accuracy", ()))
            print(f"  {text} seed {seed}: {r.status} {r.fitness:.2f}% in {r.cost:.1f} s "
                  f"({r.metrics.get('images_per_second', 0):.0f} train img/s, compiled {r.metrics.get('compiled', 0)}; per epoch: {curve}) {r.message}", flush=True)
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f"{text}: {statistics.mean(accs):.2f}% +- {sd:.2f} (sample sd over {len(accs)} seeds), "
              f"range {max(accs) - min(accs):.2f}; {statistics.mean(walls):.1f} s per evaluation", flush=True)


if __name__ == "__main__":
    main()
