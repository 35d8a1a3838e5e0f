"""bnn-cifar evaluations per minute on one machine: workers x threads (issue 7).

    python tests/bench/bench_scaling.py [--evals 4] [--profile smoke] [--expr "sin(x) + x"] [--rounds 1]

Three configurations of the loky executor, each over the same `evals`
evaluations (one expression, seeds 0..evals-1, early abort off, so every
evaluation does the same work):

    unit      1 worker, 1 torch thread
    1x2       1 worker, 2 torch threads (both cores)
    2x1       2 workers, 1 torch thread each (the executor's rule: cores // jobs)

Each configuration starts its workers and loads the data before its clock
starts (that is once per worker, per search). Prints evaluations per minute,
the ratios against the targets (2x1 >= 1.8x unit and >= 1.25x 1x2), the torch
threads each worker really had, and the load average before and after each
configuration: the cores are shared, so read the figures with the load.
"""

from __future__ import annotations

import argparse
import os
import time

from gpengine.executor import EvaluatorSpec, Executor, Task
from gpengine.expr_text import parse
from primitives import get_set


def torch_threads() -> tuple[int, int]:
    import torch

    return os.getpid(), torch.get_num_threads()


def measure(name: str, jobs: int, worker_env: dict[str, str], spec: EvaluatorSpec, tasks: list[Task]) -> dict:
    load0 = os.getloadavg()[0]
    with Executor(spec, jobs=jobs, backend="loky", worker_env=worker_env) as ex:
        workers = ex.workers()  # starts the workers, builds the evaluators, loads the data
        threads = sorted({t for _, t in [ex._loky().submit(torch_threads).result() for _ in range(jobs)]})
        t0 = time.perf_counter()
        results = ex.map(tasks)
        wall = time.perf_counter() - t0
        built = [w["built"] for w in ex.workers()]
    failed = [r.message for r in results if not r.ok]
    row = {
        "name": name, "jobs": jobs, "threads": threads, "wall": wall, "per_min": 60 * len(tasks) / wall,
        "per_eval": sum(r.cost for r in results) / len(results), "load": (load0, os.getloadavg()[0]),
        "built": built, "omp": [w["OMP_NUM_THREADS"] for w in workers], "failed": failed,
        "fitness": [round(r.fitness, 4) for r in results],
    }
    print(f"{name:5s} jobs={jobs} torch threads={threads} OMP={row['omp']}: {len(tasks)} evaluations in "
          f"{wall:.1f} s = {row['per_min']:.2f}/min (mean {row['per_eval']:.1f} s each); evaluators built "
          f"per worker {built}; load {load0:.2f} -> {row['load'][1]:.2f}; failed {len(failed)}", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--evals", type=int, default=4)
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--expr", default="sin(x) + x")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the three configurations, interleaved")
    ap.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                    help="extra bnn-cifar option (integers only), e.g. train_size=3000")
    args = ap.parse_args()
    options = {"profile": args.profile, "abort": "off", "device": "cpu", "threads": 0}
    options.update({k: int(v) for k, v in (o.split("=", 1) for o in args.options)})
    spec = EvaluatorSpec.of("bnn-cifar", {"primitives": "gaaf", **options})
    pset = get_set("gaaf")
    tasks = [Task(parse(args.expr, pset), 1.0, seed) for seed in range(args.evals)]
    print(f"cores {os.cpu_count()}, options {options}, expr {args.expr!r}, load {os.getloadavg()}", flush=True)
    rows: dict[str, list[dict]] = {"unit": [], "1x2": [], "2x1": []}
    for _ in range(args.rounds):
        rows["unit"].append(measure("unit", 1, {"OMP_NUM_THREADS": "1"}, spec, tasks))
        rows["1x2"].append(measure("1x2", 1, {}, spec, tasks))
        rows["2x1"].append(measure("2x1", 2, {}, spec, tasks))
    best = {k: max(r["per_min"] for r in v) for k, v in rows.items()}
    print(f"best of {args.rounds}: unit {best['unit']:.2f}/min, 1x2 {best['1x2']:.2f}/min, 2x1 {best['2x1']:.2f}/min; "
          f"2x1/unit = {best['2x1'] / best['unit']:.2f} (target >= 1.8), "
          f"2x1/1x2 = {best['2x1'] / best['1x2']:.2f} (target >= 1.25)")
    same = {tuple(r["fitness"]) for v in rows.values() for r in v}
    print(f"fitness identical across configurations: {len(same) == 1} {sorted(same)}")


if __name__ == "__main__":
    main()
