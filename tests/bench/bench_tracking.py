"""Tracking overhead per individual: a synthetic search with and without the MLflow tracker.

    python tests/bench/bench_tracking.py [--n 500] [--population 50] [--plot]

Reports, per individual:
  * loop:   what the search loop itself waits for (event handlers on the main
            thread, plus the final flush and artifacts at the end) minus the
            same stream without a tracker; this is the overhead a search feels;
  * store:  time the writer thread spends in MLflow calls (create run,
            log_batch, terminate), i.e. the throughput limit of the store,
            overlapped with evaluation in a real search;
and the one-off costs (importing MLflow, creating the SQLite schema).
`--plot` also draws an activation PNG per child run (what bnn-cifar gets).
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


def drive(listener, start, gens, end) -> dict[str, float]:
    t = {"start": 0.0, "events": 0.0, "end": 0.0}
    t0 = time.perf_counter()
    getattr(listener, "on_search_start", lambda e: None)(start)
    t["start"] = time.perf_counter() - t0
    for events, gen_end in gens:
        t0 = time.perf_counter()
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
    ap.add_argument("--plot", action="store_true", help="activation PNG on every child run")
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
        base = drive(Null(), *synthetic_search(n, args.population, search_id="bench-null")[:3])
        base_total = sum(base.values())
        print(f"baseline (no tracker): {base_total * 1e3 / n:.3f} ms per individual")
        modes = [("all", None), ("notable", None)]
        if args.plot:
            modes.append(("all", activation_plotter(get_set("arith"))))
        for mode, plot in modes:
            start, gens, end, _ = synthetic_search(n, args.population, search_id=f"bench-{mode}-{plot is not None}")
            tracker = MlflowTracker(uri, child_runs=mode, evaluator_plot=plot)
            writer_busy: list[float] = []
            t = drive_with_spy(tracker, start, gens, end, writer_busy)
            loop = t["events"] + t["end"] - base_total
            label = mode + (" + activation plot" if plot else "")
            print(
                f"{label:24s} loop {loop * 1e3 / n:7.3f} ms/individual "
                f"(events {t['events'] * 1e3 / n:.3f}, end incl. flush+artifacts {t['end']:.2f}s) | "
                f"store {writer_busy[0] * 1e3 / n:7.3f} ms/individual | start {t['start']:.2f}s"
            )


def drive_with_spy(tracker, start, gens, end, busy: list) -> dict[str, float]:
    """Drive the tracker, recording the writer's busy time before it is closed."""
    from gpengine.tracking import writer as writer_mod

    original = writer_mod.Writer.close

    def close(self):
        busy.append(self.busy_seconds)
        original(self)

    writer_mod.Writer.close = close
    try:
        return drive(tracker, start, gens, end)
    finally:
        writer_mod.Writer.close = original


if __name__ == "__main__":
    main()
