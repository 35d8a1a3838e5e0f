"""Evaluations on a Dask distributed cluster, one Dask future per evaluation.

Dask's own futures rather than joblib's dask backend (which runs on the same
futures): a joblib batch fails as a whole when one task raises KilledWorker,
its results come back only at the end, and it cannot cancel one late task.
Futures give each evaluation its own status, its result on arrival, and
cancel; scheduling, worker choice and rescheduling after a worker loss stay
Dask's - no scheduler of our own. Tried again in session 2 (joblib 1.6.0,
distributed 2026.8.0): `Parallel(backend="dask", batch_size=1,
return_as="generator_unordered")` streams results, but a task that kills its
workers until Dask gives up (KilledWorker) leaves the call waiting forever in
joblib's `_retrieve`, so a single bad candidate would hang the search.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Sequence

from gpengine.errors import GpengineError
from gpengine.evaluator import Result
from gpengine.executor import EvaluatorSpec, Task, run_task, worker_info


class DaskRunner:
    def __init__(self, spec: EvaluatorSpec, scheduler: str | None, timeout: float | None):
        from distributed import Client  # optional dependency: gpengine[dask]

        self.spec = spec
        self.scheduler = scheduler
        self.timeout = timeout
        self._client = Client(scheduler, set_as_default=False)
        self._topic = f"gpengine-started-{uuid.uuid4().hex}"  # evaluation starts, for the timeout
        self._started: dict[str, tuple[float, str]] = {}  # key -> (when, worker address)
        self._client.subscribe_topic(self._topic, self._on_started)

    def close(self) -> None:
        self._client.unsubscribe_topic(self._topic)
        self._client.close()

    def workers(self) -> list[dict[str, Any]]:
        return list(self._client.run(worker_info).values())

    def map(self, tasks: Sequence[Task], on_result=None) -> list[Result]:
        """Results in task order; `on_result(i, result)` once per task as it arrives."""
        client = self._client
        results: list[Result | None] = [None] * len(tasks)
        running: dict[str, tuple[Any, int]] = {}  # key -> (future, task index)
        submitted = time.monotonic()

        def settle(i: int, result: Result) -> None:
            results[i] = result
            if on_result is not None:
                on_result(i, result)

        try:
            with client.as_current():  # where distributed.wait finds its client
                for i, task in enumerate(tasks):  # all at once: placing them is Dask's job
                    key = f"gpengine-evaluate-{uuid.uuid4().hex}"
                    fut = client.submit(_run_task_on_dask, self.spec, task, self._topic, pure=False, key=key)
                    running[key] = (fut, i)
                while running:
                    for fut in self._dask_wait([f for f, _ in running.values()]):
                        _, i = running.pop(fut.key)
                        since = self._started.pop(fut.key, (submitted, ""))[0]
                        settle(i, self._dask_result(fut, time.monotonic() - since))
                    if self.timeout is not None:
                        for key, since in self._dask_late(running).items():
                            settle(running.pop(key)[1], Result.failed(
                                f"timeout: evaluation ran past {self.timeout:g}s", cost=time.monotonic() - since))
        finally:
            if running:  # interrupted: leave nothing of ours running on the cluster
                client.cancel([f for f, _ in running.values()])
        return [r if r is not None else Result.failed("not evaluated") for r in results]

    def _on_started(self, event: tuple[float, dict[str, str]]) -> None:
        """A worker began (or, after a worker loss, began again) one of our evaluations."""
        msg = event[1]
        self._started[msg["key"]] = (time.monotonic(), msg["worker"])

    def _dask_wait(self, futures: list) -> set:
        from distributed import wait

        # With a timeout, wake up regularly to look for late evaluations.
        tick = None if self.timeout is None else min(1.0, max(0.05, self.timeout / 4))
        try:
            return wait(futures, timeout=tick, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            return set()

    def _dask_late(self, running: dict[str, tuple[Any, int]]) -> dict[str, float]:
        """Evaluations running past the timeout: cancelled, their workers restarted.

        The clock starts when the worker reports the start (Dask may queue a task first),
        stops when that worker is lost, and starts again when the task is rerun; it is
        read every tick, so an evaluation is stopped between `timeout` and `timeout` +
        one tick.
        """
        alive = set(self._client.nthreads())
        for key, (_, worker) in list(self._started.items()):
            if worker not in alive:  # lost with its worker: the clock waits for the rerun
                del self._started[key]
        now = time.monotonic()
        late = {key: self._started.pop(key) for key, (since, _) in list(self._started.items())
                if key in running and now - since >= self.timeout}
        if late:
            # Cancel first, so Dask does not rerun them; then restart their workers through
            # the nanny (a Python thread cannot be interrupted), beside the search: Dask may
            # take minutes to confirm a restart. Other tasks there are rerun elsewhere.
            self._client.cancel([running[key][0] for key in late])
            threading.Thread(target=self._restart, args=(sorted({w for _, w in late.values()}),),
                             name="gpengine-restart-workers", daemon=True).start()
        return {key: since for key, (since, _) in late.items()}

    def _restart(self, workers: list[str]) -> None:
        try:
            self._client.restart_workers(workers, timeout=300, raise_for_error=False)
        except Exception:  # noqa: BLE001 - the client closed meanwhile: nothing left to do
            pass

    def _dask_result(self, fut, elapsed: float) -> Result:
        from distributed import KilledWorker

        if fut.status == "cancelled":  # not by us: the scheduler went away or was restarted
            raise GpengineError(f"Dask cancelled evaluation {fut.key} (scheduler {self.scheduler} lost or "
                                "restarted); resume the search when the cluster is back")
        try:
            return fut.result()
        except KilledWorker as exc:  # Dask gave up after allowed-failures worker deaths under it
            return Result.failed(f"worker died: KilledWorker: {exc}", cost=elapsed)
        except Exception as exc:  # noqa: BLE001 - e.g. a worker that cannot unpickle the task
            return Result.failed(f"on the Dask worker: {type(exc).__name__}: {exc}", cost=elapsed)
        finally:
            fut.release()


def _run_task_on_dask(spec: EvaluatorSpec, task: Task, topic: str) -> Result:
    """`run_task` on a Dask worker, first telling the client (Dask's event topics) that it starts."""
    from distributed import get_worker

    worker = get_worker()
    worker.log_event(topic, {"key": str(worker.get_current_task()), "worker": worker.address})
    return run_task(spec, task)
