"""A single background thread that performs MLflow writes in submission order.

Why a thread: a child run costs three store calls (create, log_batch,
terminate), about 20 ms on a local SQLite store and more against a remote
server. Done inline, that would stall the search loop between generations;
queued, the loop pays well under a millisecond per individual and the writes
overlap with evaluation (which runs in worker processes). Still only the main
process writes, and one thread does all writing, so order is kept: a parent's
child run always exists before its children refer to it.

Errors: each job is retried a few times (SQLite may be briefly locked by a UI
reading it); a job that still fails stops the writer, and the error is
re-raised in the search's thread at the next `check()` or `flush()`.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable

from gpengine.errors import GpengineError

_STOP = object()


class TrackingError(GpengineError):
    """Writing to the tracking store failed (after retries)."""


class Writer:
    def __init__(self, name: str = "gpengine-tracking", retries: int = 3, backoff: float = 0.5, maxsize: int = 20000):
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._retries = retries
        self._backoff = backoff
        self._error: BaseException | None = None
        self._what = ""
        self.busy_seconds = 0.0  # time spent in store calls, for benchmarks
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any, what: str = "") -> None:
        """Queue `fn(*args)`; blocks only when the queue is full (back-pressure)."""
        self.check()
        self._queue.put((fn, args, what))

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if self._error is not None:
                    continue  # drain without writing once broken
                fn, args, what = item
                t0 = time.perf_counter()
                for attempt in range(self._retries + 1):
                    try:
                        fn(*args)
                        break
                    except Exception as exc:  # noqa: BLE001 - reported in the search thread
                        if attempt == self._retries:
                            self._error, self._what = exc, what
                        else:
                            time.sleep(self._backoff * 2**attempt)
                self.busy_seconds += time.perf_counter() - t0
            finally:
                self._queue.task_done()

    def check(self) -> None:
        """Raise the writer's failure, if any, as one clear line."""
        if self._error is not None:
            what = f" ({self._what})" if self._what else ""
            raise TrackingError(f"tracking write failed{what}: {type(self._error).__name__}: {self._error}")

    def flush(self) -> None:
        """Wait until every queued write is done; then report any failure."""
        self._queue.join()
        self.check()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    @property
    def pending(self) -> int:
        return self._queue.unfinished_tasks
