"""Evaluations on a Dask distributed cluster, through joblib's dask backend.

`joblib.Parallel` with joblib's `DaskDistributedBackend` sends one evaluation
per Dask task (`batch_size=1`, all submitted at once, results streamed as they
finish); scheduling, worker choice and rerunning a task whose worker died stay
Dask's. No scheduler of our own.

Two repairs to joblib (1.6.0), in `_JoblibDaskBackend`:
- joblib runs a call in the calling process when the cluster has a single
  thread (one worker with one GPU, or one left after a loss); the backend never
  reports fewer than 2, so the work always goes to the cluster.
- When Dask itself gives up on a task (KilledWorker after `allowed-failures`
  worker deaths under it), joblib's backend sets the error on its future but
  never calls the batch's completion callback, so `Parallel` waits for it
  forever: one candidate that crashes its workers would hang the search. A
  cancelled task goes the other way: the callback gets Dask's
  `FutureCancelledError` as the result and re-raises it, aborting the whole
  call. The backend passes both through the callback as a value (`_Lost`),
  which becomes that evaluation's failed Result; the others go on.

The timeout is ours: each worker reports when it starts an evaluation (a Dask
event topic), once its evaluator is built; one running past `timeout` is
cancelled (its Dask task, by key) and its worker restarted through the nanny.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import queue
import socket
import threading
import time
import uuid
from typing import Any, Sequence

import attrs

from gpengine.errors import GpengineError
from gpengine.evaluator import Result
from gpengine.executor import EvaluatorSpec, Task, run_task, timed_out, worker_died, worker_evaluator, worker_info


@attrs.frozen
class _Lost:
    """An evaluation Dask gave up on: its index in the map and Dask's exception."""

    index: int
    error: BaseException


@attrs.frozen
class _Started:
    when: float
    worker: str
    key: str  # the Dask task's key, for cancelling it


def _backend_class():
    from joblib._dask import DaskDistributedBackend  # the class joblib's "dask" backend name stands for

    class _JoblibDaskBackend(DaskDistributedBackend):
        """joblib's dask backend, with a lost task completed through joblib's callback (see module doc)."""

        def effective_n_jobs(self, n_jobs):
            # joblib runs a call in the calling process when this says 1: a cluster of one
            # single-threaded worker (one GPU, or one left after a loss) must still get the work.
            return max(2, super().effective_n_jobs(n_jobs))

        def submit(self, func, callback=None):
            index = func.items[0][1][0]  # batch_size=1: one `_evaluate_on_dask(index, ...)` call per batch

            def on_result(out) -> None:
                callback(_lost_if_cancelled(index, out))

            future = super().submit(func, on_result if callback is not None else None)

            def on_done(f) -> None:
                if callback is not None and not f.cancelled() and f.exception() is not None:  # success: called back
                    callback(_Lost(index, f.exception()))

            future.add_done_callback(on_done)
            return future

        def retrieve_result_callback(self, out):
            return [out] if isinstance(out, _Lost) else super().retrieve_result_callback(out)

        def cancel_all(self) -> None:
            """Cancel every task of this call still on the cluster (interrupted search)."""
            self.client.cancel(list(self._results))  # joblib's dask futures not yet collected

    return _JoblibDaskBackend


def _lost_if_cancelled(index: int, out: Any) -> Any:
    """A cancelled Dask task as a `_Lost`, not an error that aborts the whole joblib call.

    joblib's dask backend treats a cancelled future (our timeout cancels one) as a success
    and hands Dask's `FutureCancelledError` to the batch callback as if it were the result;
    re-raised there, it aborted the map (seen once in CI, a race with Dask's cancellation).
    """
    if isinstance(out, (concurrent.futures.CancelledError, asyncio.CancelledError)):
        return _Lost(index, out)
    return out


_END = object()  # the joblib call returned (or raised)


def _refused(scheduler: str | None) -> str | None:
    """Why a tcp:// scheduler address cannot be connected to, when its host says so at once.

    Dask retries a refused connection until its connect timeout (30 s by default), so a
    mistyped port kept the user waiting half a minute for a one-line error; one plain
    socket connect answers in milliseconds. Anything short of a refusal (a slow network,
    another protocol, a name to resolve) is left to Dask."""
    if not scheduler or not scheduler.startswith("tcp://"):
        return None
    host, _, port = scheduler[len("tcp://"):].rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=2.0).close()
    except ConnectionRefusedError:
        return f"nothing listens at {host}:{port} (connection refused)"
    except OSError:
        return None
    return None


def _connect(client_class: Any, scheduler: str | None) -> Any:
    """A Dask client of `scheduler`; GpengineError, one line, for an address that is malformed or
    that nothing answers at (Dask gives up after its connect timeout, 30 s by default).
    """
    refused = _refused(scheduler)
    if refused:
        raise GpengineError(f"cannot connect to the Dask scheduler {scheduler!r}: {refused}")
    try:
        return client_class(scheduler, set_as_default=False)
    except (OSError, ValueError) as exc:  # TimeoutError is an OSError
        problem = f"{type(exc).__name__}: {exc}"
    # A client that failed to start is left in a reference cycle; collected only at interpreter
    # exit, its __del__ waited a minute on an event loop already gone, then printed a traceback.
    gc.collect()
    raise GpengineError(f"cannot connect to the Dask scheduler {scheduler!r}: {problem}")


class DaskRunner:
    def __init__(self, spec: EvaluatorSpec, scheduler: str | None, timeout: float | None):
        from distributed import Client  # optional dependency: gpengine[dask]

        self.spec = spec
        self.scheduler = scheduler
        self.timeout = timeout
        self._client = _connect(Client, scheduler)
        self._topic = f"gpengine-started-{uuid.uuid4().hex}"  # evaluation starts, for the timeout
        self._started: dict[int, _Started] = {}  # task index -> its latest start
        self._client.subscribe_topic(self._topic, self._on_started)

    def close(self) -> None:
        self._client.unsubscribe_topic(self._topic)
        self._client.close()

    def workers(self) -> list[dict[str, Any]]:
        return list(self._client.run(worker_info).values())

    def map(self, tasks: Sequence[Task], on_result=None) -> list[Result]:
        """Results in task order; `on_result(i, result)` once per task as it arrives."""
        from joblib import Parallel, delayed

        results: list[Result | None] = [None] * len(tasks)
        pending = set(range(len(tasks)))
        cancelled: set[int] = set()  # by our timeout
        arrived: queue.Queue = queue.Queue()
        # A cluster whose workers are still joining gets a minute before joblib gives up on it.
        backend = _backend_class()(client=self._client, wait_for_workers_timeout=60)
        self._started.clear()
        submitted = time.monotonic()

        def settle(i: int, result: Result) -> None:
            pending.discard(i)
            self._started.pop(i, None)
            results[i] = result
            if on_result is not None:
                on_result(i, result)

        def consume() -> None:  # joblib's generator blocks; the main thread must keep the clock
            try:
                calls = (delayed(_evaluate_on_dask)(i, self.spec, task, self._topic) for i, task in enumerate(tasks))
                for item in Parallel(n_jobs=-1, backend=backend, batch_size=1, pre_dispatch="all",
                                     return_as="generator_unordered")(calls):
                    arrived.put(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                arrived.put(exc)
            finally:
                arrived.put(_END)

        threading.Thread(target=consume, name="gpengine-joblib-dask", daemon=True).start()
        # With a timeout, wake up regularly to look for late evaluations.
        tick = None if self.timeout is None else min(1.0, max(0.05, self.timeout / 4))
        try:
            while pending:
                try:
                    item = arrived.get(timeout=tick)
                except queue.Empty:
                    item = None
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise GpengineError(f"Dask backend failed: {type(item).__name__}: {item}") from item
                if item is not None:
                    i, result = self._outcome(item, cancelled, submitted)
                    if i in pending:
                        settle(i, result)
                if self.timeout is not None:
                    for i, started in self._late(pending).items():
                        cancelled.add(i)
                        settle(i, timed_out(self.timeout, cost=time.monotonic() - started.when))
        finally:
            if pending:  # interrupted: leave nothing of ours running on the cluster
                backend.cancel_all()
        return [r if r is not None else Result.failed("not evaluated") for r in results]

    def _outcome(self, item, cancelled: set[int], submitted: float) -> tuple[int, Result]:
        from distributed import KilledWorker

        if not isinstance(item, _Lost):
            return item
        i, exc = item.index, item.error
        started = self._started.get(i)
        elapsed = time.monotonic() - (started.when if started else submitted)
        if isinstance(exc, KilledWorker):  # Dask gave up after allowed-failures worker deaths under it
            return i, worker_died(exc, cost=elapsed)
        if isinstance(exc, (asyncio.CancelledError, concurrent.futures.CancelledError)) and i not in cancelled:
            # not by us: the scheduler went away or was restarted
            raise GpengineError(f"Dask cancelled evaluation {i} (scheduler {self.scheduler} lost or "
                                "restarted); resume the search when the cluster is back")
        return i, Result.failed(f"on the Dask worker: {type(exc).__name__}: {exc}", cost=elapsed)

    def _on_started(self, event: tuple[float, dict]) -> None:
        """A worker began (or, after a worker loss, began again) one of our evaluations."""
        msg = event[1]
        self._started[msg["index"]] = _Started(time.monotonic(), msg["worker"], msg["key"])

    def _late(self, pending: set[int]) -> dict[int, _Started]:
        """Evaluations running past the timeout: cancelled, their workers restarted.

        The clock starts when the worker reports the start (Dask may queue a task first),
        stops when that worker is lost, and starts again when the task is rerun; it is
        read every tick, so an evaluation is stopped between `timeout` and `timeout` +
        one tick, if the scheduler says its worker is still processing it.
        """
        from distributed import Future

        alive = set(self._client.nthreads())
        for i, started in list(self._started.items()):
            if started.worker not in alive:  # lost with its worker: the clock waits for the rerun
                del self._started[i]
        now = time.monotonic()
        over = {i: started for i, started in self._started.items()
                if i in pending and now - started.when >= self.timeout}
        late = {}
        if over:
            # Past the clock is not yet late: only a task its worker is still processing has run
            # too long. One that finished may still be on its way (joblib's callbacks lag behind
            # a worker's death under load: a bystander failed so in CI), and one whose worker
            # the scheduler has dropped since reports a new start when it is rerun.
            workers = sorted({s.worker for s in over.values()})
            running = {w: {str(k) for k in keys} for w, keys in self._client.processing(workers=workers).items()}
            for i, started in over.items():
                del self._started[i]
                if started.key in running.get(started.worker, ()):
                    late[i] = started
        if late:
            # Cancel first, so Dask does not rerun them; then restart their workers through
            # the nanny (a Python thread cannot be interrupted), beside the search: Dask may
            # take minutes to confirm a restart. Other tasks there are rerun elsewhere.
            self._client.cancel([Future(s.key, self._client) for s in late.values()])
            threading.Thread(target=self._restart, args=(sorted({s.worker for s in late.values()}),),
                             name="gpengine-restart-workers", daemon=True).start()
        return late

    def _restart(self, workers: list[str]) -> None:
        try:
            self._client.restart_workers(workers, timeout=300, raise_for_error=False)
        except Exception:  # noqa: BLE001 - the client closed meanwhile: nothing left to do
            pass


def _evaluate_on_dask(index: int, spec: EvaluatorSpec, task: Task, topic: str) -> tuple[int, Result]:
    """`run_task` on a Dask worker, first telling the client (Dask's event topics) that it starts.

    The evaluator is built (imports, data) before the start is reported: the timeout is for
    the evaluation, not for a fresh worker's start-up, as with the local process pool. (A
    worker restarted after a crash builds it again; under load that took more than a 2 s
    timeout and failed a bystander.)
    """
    from distributed import get_worker

    try:
        worker_evaluator(spec)
    except Exception:  # noqa: BLE001 - run_task reports it as this evaluation's failed Result
        pass
    worker = get_worker()
    worker.log_event(topic, {"index": index, "key": str(worker.get_current_task()), "worker": worker.address})
    return index, run_task(spec, task)
