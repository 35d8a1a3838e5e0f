"""Tracking overhead per individual: a synthetic search with and without the MLflow tracker.

    python tests/bench/bench_tracking.py [--n 500] [--population 50] [--eval-ms 0] [--plot] [--symreg]

Reports, per individual:
  * loop:   what the search loop itself waits for (event handlers on the main
            thread, plus the final flush and artifacts at the end) minus the
            same stream without a tracker; this is the overhead a search feels;
  * store:  time the writer thread spends in MLflow calls (create run,
            log_batch, terminate), i.e. the throughput limit of the store,
            overlapped with evaluation in a real search;
and the one-off costs (importing MLflow, creating the SQLite schema).
`--eval-ms` makes each generation wait as if its individuals took that long
to evaluate (in worker processes), so the writer can overlap with it; `loop`
is then the extra wall time a search would see. `--plot` also draws an
activation PNG per child run (what bnn-cifar gets). `--symreg` times a real
symreg search of about --n individuals with and without the tracker.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for tracking_stream

from tracking_stream import synthetic_search  # noqa: E402


class Null:
    """A listener that does nothing: the baseline cost of emitting events."""


def drive(listener, start, gens, end, eval_ms: float = 0.0) -> dict[str, float]:
    t = {"start": 0.0, "events": 0.0, "end": 0.0}
    t0 = time.perf_counter()
    getattr(listener, "on_search_start", lambda e: None)(start)
    t["start"] = time.perf_counter() - t0
    for events, gen_end in gens:
        t0 = time.perf_counter()
        time.sleep(eval_ms * len(events) / 1e3)  # the generation's evaluations
        for e in events:
            getattr(listener, "on_individual", lambda e: None)(e)
        getattr(listener, "on_generation", lambda e: None)(gen_end)
        t["events"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    getattr(listener, "on_search_end", lambda e: None)(end)
    t["end"] = time.perf_counter() - t0
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--population", type=int, default=50)
    ap.add_argument("--eval-ms", type=float, default=0.0, help="simulated evaluation time per individual")
    ap.add_argument("--plot", action="store_true", help="activation PNG on every child run")
    ap.add_argument("--symreg", action="store_true", help="also time a real symreg search")
    args = ap.parse_args()

    t0 = time.perf_counter()
    import mlflow  # noqa: F401

    from gpengine.tracking import MlflowTracker, store
    from gpengine.tracking.plots import activation_plotter
    from primitives import get_set

    t_import = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        uri = "sqlite:///" + str(Path(tmp) / "mlflow.db")
        t0 = time.perf_counter()
        store.client(uri).search_experiments()
        t_schema = time.perf_counter() - t0
        print(f"one-off: import mlflow {t_import:.2f}s, create SQLite schema {t_schema:.2f}s")
        n = args.n
        base = drive(Null(), *synthetic_search(n, args.population, search_id="bench-null")[:3], args.eval_ms)
        base_total = sum(base.values())
        print(f"baseline (no tracker): {base_total * 1e3 / n:.3f} ms per individual")
        modes = [("all", None), ("notable", None)]
        if args.plot:
            modes.append(("all", activation_plotter(get_set("arith"))))
        for mode, plot in modes:
            start, gens, end, _ = synthetic_search(n, args.population, search_id=f"bench-{mode}-{plot is not None}")
            tracker = MlflowTracker(uri, child_runs=mode, evaluator_plot=plot)
            writer_busy: list[float] = []
            t = drive_with_spy(tracker, start, gens, end, writer_busy, args.eval_ms)
            loop = t["events"] + t["end"] - base_total
            label = mode + (" + activation plot" if plot else "")
            print(
                f"{label:24s} eval {args.eval_ms:g} ms: loop {loop * 1e3 / n:7.3f} ms/individual "
                f"(events {t['events'] * 1e3 / n:.3f}, end incl. flush+artifacts {t['end']:.2f}s) | "
                f"store {writer_busy[0] * 1e3 / n:7.3f} ms/individual | start {t['start']:.2f}s"
            )
        if args.symreg:
            bench_symreg(uri, n, args.population)


def drive_with_spy(tracker, start, gens, end, busy: list, eval_ms: float) -> dict[str, float]:
    """Drive the tracker, recording the writer's busy time before it is closed."""
    from gpengine.tracking import writer as writer_mod

    original = writer_mod.Writer.close

    def close(self):
        busy.append(self.busy_seconds)
        original(self)

    writer_mod.Writer.close = close
    try:
        return drive(tracker, start, gens, end, eval_ms)
    finally:
        writer_mod.Writer.close = original


def bench_symreg(uri: str, n: int, population: int) -> None:
    """A real symreg search, same seed, without and with the tracker."""
    from gpengine.config import build_config
    from gpengine.search import Search
    from gpengine.tracking import MlflowTracker

    generations = max(1, n // population - 1)
    sets = [f"population={population}", f"generations={generations}", "tracking=false", "journal=false"]
    for label, mode in (("symreg, no tracker", None), ("symreg, tracker (all)", "all"), ("symreg, tracker (auto)", "auto")):
        cfg, opts = build_config(evaluator="symreg", overrides=sets, seed=1)
        ls = [MlflowTracker(uri, child_runs=mode)] if mode else []
        t0 = time.perf_counter()
        out = Search(cfg, opts, listeners=ls).run()
        wall = time.perf_counter() - t0
        print(f"{label:24s} {len(out.individuals)} individuals in {wall:.2f}s ({wall * 1e3 / len(out.individuals):.2f} ms each)")


if __name__ == "__main__":
    main()
