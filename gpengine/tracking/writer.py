"""A single background thread that performs MLflow writes in submission order.

Why a thread: a child run costs three store calls (create, log_batch,
terminate), about 20 ms on a local SQLite store and more against a remote
server. Done inline, that would stall the search loop between generations;
queued, the loop pays well under a millisecond per individual and the writes
overlap with evaluation (which runs in worker processes). Still only the main
process writes, and one thread does all writing, so order is kept: a parent's
child run always exists before its children refer to it.

Errors and outages: a job that fails is retried with growing pauses (SQLite
may be briefly locked by a UI reading it; a remote server may be restarting).
While the store stays unreachable the search goes on - its journal holds
everything - and the writer keeps retrying in the background, so it catches up
when the server is back. Only at the end of a search (`flush`) does it give up,
after `grace` seconds, and report the failure in the search's thread; a later
`gpengine resume` completes the records from the journal.

A write the store refuses for what it contains (`refused(exc)` says so: MLflow's
INVALID_PARAMETER_VALUE, say) would be refused again on every retry and on every
resume, so it is not an outage: it is skipped with one line on stderr, counted
in `refused_writes`, and the search and the other records go on.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Any, Callable

from gpengine.errors import GpengineError

_STOP = object()
_REFUSALS_SHOWN = 3


class TrackingError(GpengineError):
    """Writing to the tracking store failed (after retries)."""


class Writer:
    def __init__(self, name: str = "gpengine-tracking", retries: int = 3, backoff: float = 0.5, maxsize: int = 20000,
                 grace: float = 60.0, max_pause: float = 10.0,
                 refused: Callable[[BaseException], bool] = lambda exc: False):
        self._refused = refused
        self.refused_writes = 0
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._retries = retries
        self._backoff = backoff
        self._grace = grace
        self._max_pause = max_pause
        self._give_up_at: float | None = None  # set by flush: stop retrying after the grace period
        self._error: BaseException | None = None
        self._what = ""
        self.outage: str | None = None  # what the store last answered while unreachable
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
                self._run(fn, args, what)
                self.busy_seconds += time.perf_counter() - t0
            finally:
                self._queue.task_done()

    def _run(self, fn: Callable[..., Any], args: tuple, what: str) -> None:
        attempt = 0
        while True:
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - reported in the search thread
                if self._refused(exc):
                    self.refused_writes += 1
                    if self.refused_writes <= _REFUSALS_SHOWN:  # the same cause would repeat for every child run
                        more = "; further refusals are skipped silently" if self.refused_writes == _REFUSALS_SHOWN else ""
                        print(f"gpengine: the tracking store refused a write{f' ({what})' if what else ''}, "
                              f"skipped: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}{more}",
                              file=sys.stderr)
                    return
                attempt += 1
                if self._give_up_at is not None and time.monotonic() >= self._give_up_at:
                    self._error, self._what = exc, what
                    return
                if attempt > self._retries and self.outage is None:
                    self.outage = f"{type(exc).__name__}: {exc}"
                    print(f"gpengine: tracking store unreachable ({self.outage}); the search goes on and "
                          "tracking catches up when it is back", file=sys.stderr)
                time.sleep(min(self._backoff * 2 ** min(attempt - 1, 8), self._max_pause))
                continue
            if self.outage is not None:
                print("gpengine: tracking store reachable again; catching up", file=sys.stderr)
                self.outage = None
            return

    def check(self) -> None:
        """Raise the writer's failure, if any, as one clear line."""
        if self._error is not None:
            what = f" ({self._what})" if self._what else ""
            raise TrackingError(f"tracking write failed{what}: {type(self._error).__name__}: {self._error}")

    def flush(self) -> None:
        """Wait until every queued write is done (an outage gets `grace` more seconds); report any failure."""
        self._give_up_at = time.monotonic() + self._grace
        self._queue.join()
        self._give_up_at = None
        self.check()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    @property
    def pending(self) -> int:
        return self._queue.unfinished_tasks
