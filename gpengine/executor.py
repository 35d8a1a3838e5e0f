"""Run evaluations: in process, in joblib's loky workers, or on a Dask cluster.

Workers receive plain data (evaluator name and options, the expression, budget
and seed) and return a `Result`; only the main process writes anything. Each
worker builds its evaluator once and keeps it (data loaded once per worker, not
once per evaluation). An exception inside an evaluator becomes a failed Result
here, so no candidate can stop the search.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from typing import Any, Sequence

import attrs
import joblib

from gpengine.evaluator import FAILED, Result
from gpengine.expr import Expr

_EVALUATORS: dict[str, Any] = {}  # per-process cache: (name, options) -> evaluator


@attrs.frozen
class Task:
    expr: Expr
    budget: float
    seed: int


@attrs.frozen
class EvaluatorSpec:
    """How a worker builds the evaluator: entry-point name and options."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    @staticmethod
    def of(name: str, options: dict[str, Any]) -> "EvaluatorSpec":
        return EvaluatorSpec(name, tuple(sorted(options.items())))

    def key(self) -> str:
        return f"{self.name}|{self.options!r}"


def worker_evaluator(spec: EvaluatorSpec):
    key = spec.key()
    ev = _EVALUATORS.get(key)
    if ev is None:
        from gpengine.plugins import make_evaluator

        ev = make_evaluator(spec.name, dict(spec.options))
        _EVALUATORS[key] = ev
    return ev


def register_local(spec: EvaluatorSpec, evaluator: Any) -> None:
    """Let in-process evaluation reuse the evaluator the main process already built."""
    _EVALUATORS.setdefault(spec.key(), evaluator)


def run_task(spec: EvaluatorSpec, task: Task) -> Result:
    """Evaluate one task; never raises for a bad candidate."""
    start = time.perf_counter()
    try:
        evaluator = worker_evaluator(spec)
        result = evaluator.evaluate(task.expr, budget=task.budget, seed=task.seed)
        if not isinstance(result, Result):
            return Result.failed(f"evaluator returned {type(result).__name__}, not a Result",
                                 cost=time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - a plugin's bug must not stop the search
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" ({tb[-1].filename.rsplit(os.sep, 1)[-1]}:{tb[-1].lineno})" if tb else ""
        return Result.failed(f"{type(exc).__name__}: {exc}{where}", cost=time.perf_counter() - start)
    if result.status != FAILED and not math.isfinite(result.fitness):
        result = attrs.evolve(result, fitness=math.nan, status=FAILED,
                              message=result.message or "non-finite fitness")
    if result.cost == 0.0:
        result = attrs.evolve(result, cost=time.perf_counter() - start)
    return result


class Executor:
    """Evaluate batches of tasks with the configured backend.

    `sequential` runs in this process (best for cheap evaluators); `loky` keeps
    a pool of worker processes alive for the whole search; `dask` sends tasks to
    a Dask distributed scheduler through joblib's dask backend.
    """

    def __init__(self, spec: EvaluatorSpec, jobs: int = 1, backend: str = "auto", scheduler: str | None = None):
        self.spec = spec
        self.jobs = jobs
        self.backend = ("sequential" if jobs == 1 else "loky") if backend == "auto" else backend
        self.scheduler = scheduler
        self._parallel: joblib.Parallel | None = None
        self._client = None

    def __enter__(self) -> "Executor":
        if self.backend == "loky":
            self._parallel = joblib.Parallel(n_jobs=self.jobs, backend="loky", return_as="list")
            self._parallel.__enter__()
        elif self.backend == "dask":
            from distributed import Client  # optional dependency: gpengine[dask]

            self._client = Client(self.scheduler)
            self._dask_ctx = joblib.parallel_config(backend="dask")
            self._dask_ctx.__enter__()
            self._parallel = joblib.Parallel(n_jobs=-1, return_as="list")
            self._parallel.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._parallel is not None:
            self._parallel.__exit__(*exc_info)
            self._parallel = None
        if self._client is not None:
            self._dask_ctx.__exit__(*exc_info)
            self._client.close()
            self._client = None

    def map(self, tasks: Sequence[Task]) -> list[Result]:
        if not tasks:
            return []
        if self._parallel is None:
            return [run_task(self.spec, t) for t in tasks]
        call = joblib.delayed(run_task)
        return list(self._parallel(call(self.spec, t) for t in tasks))
