"""Run evaluations: in process, in loky worker processes, or on a Dask cluster.

Workers receive plain data (evaluator name and options, the expression, budget
and seed) and return a `Result`; only the main process writes anything. Each
worker builds its evaluator once and keeps it, so data is loaded once per
worker, not once per evaluation.

Failure isolation: an exception inside an evaluator becomes a failed Result in
the worker. With worker processes (loky), an evaluation that runs past
`timeout` seconds, or whose worker dies (segfault, out-of-memory kill,
`os._exit`), becomes a failed Result with that reason; the pool is replaced and
the evaluations that were running beside it are retried (bounded), so no
candidate can stop the search.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
import time
import traceback
from typing import Any, Callable, Sequence

import attrs
import joblib
from joblib.externals.loky import ProcessPoolExecutor

from gpengine.evaluator import FAILED, Result
from gpengine.expr import Expr

_EVALUATORS: dict[str, Any] = {}  # per-process cache: (name, options) -> evaluator
MAX_RETRIES = 2  # an evaluation that was running when a worker died is retried this often


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


def _warm_up(spec: EvaluatorSpec) -> int:
    worker_evaluator(spec)
    return os.getpid()


def resolve_backend(backend: str, jobs: int, isolate: bool) -> str:
    """`auto`: in process for one job of a cheap evaluator, worker processes otherwise."""
    if backend != "auto":
        return backend
    return "loky" if (jobs > 1 or isolate) else "sequential"


class Executor:
    """Evaluate batches of tasks with the configured backend.

    `sequential` runs in this process (best for cheap evaluators: no pickling);
    `loky` keeps `jobs` worker processes alive for the whole search, with
    per-evaluation timeout and worker-death isolation; `dask` sends tasks to a
    Dask distributed scheduler through joblib's dask backend.
    """

    def __init__(self, spec: EvaluatorSpec, jobs: int = 1, backend: str = "auto", scheduler: str | None = None,
                 timeout: float | None = None, isolate: bool = False, worker_env: dict[str, str] | None = None):
        self.spec = spec
        self.jobs = jobs
        self.backend = resolve_backend(backend, jobs, isolate)
        self.scheduler = scheduler
        self.timeout = timeout
        self.worker_env = dict(worker_env or {})
        self._pool = None
        self._client = None
        self._parallel: joblib.Parallel | None = None

    # -- lifetime -----------------------------------------------------------------------
    def __enter__(self) -> "Executor":
        if self.backend == "dask":
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
        if self._pool is not None:
            self._pool.shutdown(wait=False, kill_workers=True)
            self._pool = None

    def _loky(self):
        if self._pool is None:
            env = {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // self.jobs)), **self.worker_env}
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, timeout=None, env=env)
            # Start every worker and build its evaluator (imports, data) before any clock
            # runs: the timeout is for the evaluation, not for a worker's start-up.
            warm = [self._pool.submit(_warm_up, self.spec) for _ in range(self.jobs)]
            cf.wait(warm)
        return self._pool

    def _replace_pool(self) -> None:
        """Kill every worker (a hung one cannot be interrupted) and start afresh."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, kill_workers=True)
            self._pool = None

    # -- evaluation ---------------------------------------------------------------------
    def map(self, tasks: Sequence[Task], on_result: Callable[[int, Result], None] | None = None) -> list[Result]:
        """Results in task order; `on_result(i, result)` is called as each one arrives."""
        if not tasks:
            return []
        if self.backend == "sequential":
            out = []
            for i, t in enumerate(tasks):
                out.append(run_task(self.spec, t))
                if on_result is not None:
                    on_result(i, out[-1])
            return out
        if self.backend == "dask":
            call = joblib.delayed(run_task)
            out = list(self._parallel(call(self.spec, t) for t in tasks))
            if on_result is not None:
                for i, r in enumerate(out):
                    on_result(i, r)
            return out
        return self._map_isolated(tasks, on_result)

    def _map_isolated(self, tasks: Sequence[Task], on_result=None) -> list[Result]:
        results: list[Result | None] = [None] * len(tasks)
        deaths = [0] * len(tasks)
        suspects: list[int] = []  # were running when a worker died: retried one at a time
        todo = list(range(len(tasks)))
        while todo or suspects:
            pool = self._loky()
            running: dict[cf.Future, int] = {}
            started: dict[int, float] = {}
            queue, todo = todo, []
            solo, suspects = suspects, []
            broken = False
            while (solo or queue or running) and not broken:
                # A suspect runs alone, so a worker death under it is its own.
                while solo and not running:
                    i = solo.pop(0)
                    running[pool.submit(run_task, self.spec, tasks[i])] = i
                    started[i] = time.monotonic()
                while not solo and queue and len(running) < self.jobs:
                    i = queue.pop(0)
                    running[pool.submit(run_task, self.spec, tasks[i])] = i
                    started[i] = time.monotonic()
                wait_for = None
                if self.timeout is not None:
                    wait_for = max(0.0, min(started[i] + self.timeout for i in running.values()) - time.monotonic())
                done, _ = cf.wait(running, timeout=wait_for, return_when=cf.FIRST_COMPLETED)
                dead = []
                for fut in done:
                    i = running.pop(fut)
                    try:
                        results[i] = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker died under this task
                        dead.append((i, exc))
                        continue
                    if on_result is not None:
                        on_result(i, results[i])
                if dead:
                    broken = True
                    alone = len(dead) == 1 and not running
                    for i, exc in dead:
                        deaths[i] += 1
                        if alone or deaths[i] > MAX_RETRIES:
                            results[i] = Result.failed(f"worker died: {type(exc).__name__}: {exc}".strip(),
                                                       cost=time.monotonic() - started[i])
                        else:
                            suspects.append(i)
                if self.timeout is not None and not broken:
                    now = time.monotonic()
                    late = [f for f, i in running.items() if now - started[i] >= self.timeout]
                    for fut in late:
                        i = running.pop(fut)
                        results[i] = Result.failed(f"timeout: evaluation ran past {self.timeout:g}s",
                                                   cost=now - started[i])
                    broken = bool(late)
            if broken:
                # A dead or hung worker takes the pool down: start a new one, and rerun
                # what was running beside it (innocent) and what had not started yet.
                self._replace_pool()
                todo.extend(running.values())
                todo.extend(queue)
                suspects = solo + suspects
        return [r if r is not None else Result.failed("not evaluated") for r in results]
