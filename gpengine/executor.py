"""Run evaluations: in process, in loky worker processes, or on a Dask cluster.

Workers receive plain data (evaluator name and options, the expression, budget
and seed) and return a `Result`; only the main process writes anything. Each
worker builds its evaluator once and keeps it, so data is loaded once per
worker, not once per evaluation.

Threads and devices (loky): each worker starts with OMP_NUM_THREADS (and the
MKL/OpenBLAS equivalents) = usable cores // jobs, at least 1, so `jobs`
workers never oversubscribe the cores; torch reads it when it loads in the
worker, and an evaluator option that sets threads explicitly (bnn-cifar's
`threads`) wins. With two or more GPUs visible (CUDA_VISIBLE_DEVICES of the
main process, else `nvidia-smi`), worker k sees only GPU k mod n, so
`--jobs <number of GPUs>` runs one evaluation per GPU. A worker lives for the
whole search (loky's memory-leak replacement is off: loaded data is no leak).
Dask workers are started by the user, who sets their threads and devices
(docs/cluster.md).

Failure isolation: an exception inside an evaluator becomes a failed Result in
the worker. With worker processes (loky), an evaluation that runs past
`timeout` seconds, or whose worker dies (segfault, out-of-memory kill,
`os._exit`), becomes a failed Result with that reason; the pool is replaced and
the evaluations that were running beside it are retried (bounded), so no
candidate can stop the search. On Dask, the scheduler itself reruns the tasks
of a lost worker (at most `distributed.scheduler.allowed-failures` times); a
task that keeps killing workers ends as a failed Result, and a task past
`timeout` is cancelled and its worker restarted through its nanny.

A running Python call cannot be stopped from inside its own process, so a
`timeout` always runs evaluations in worker processes (`auto` picks loky even
for one job; `sequential` with a timeout is refused). In process (one job, no
timeout, `isolate` off) nothing protects the search from an evaluation that
calls `os._exit` or is killed: the process ends with it (the journal keeps
every finished evaluation, so `gpengine resume` continues); `isolate=true` is
the protection for evaluators that may do so.

Loky workers die with the main process (Linux: PR_SET_PDEATHSIG, set when a
worker starts), so a `kill -9` of a search leaves no worker evaluating beside
the search that resumes it.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
import traceback
import warnings
from typing import Any, Callable, Sequence

import attrs
import joblib
from joblib.externals.loky import ProcessPoolExecutor

from gpengine.errors import ConfigError, GpengineWarning
from gpengine.evaluator import FAILED, Result
from gpengine.expr import Expr
from gpengine.parent_death import die_with_parent

_EVALUATORS: dict[str, Any] = {}  # per-process cache: (name, options) -> evaluator
_BUILT = 0  # evaluators this process has constructed (observability: once per worker)
_BUILD_LOCK = threading.Lock()  # a Dask worker may run several tasks in threads
_DEVICE_LOCK: list[int] = []  # a loky worker's claim on its device slot, held for life
MAX_RETRIES = 2  # an evaluation that was running when a worker died is retried this often
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# Local worker processes allowed per CPU: evaluations are compute-bound, so more only queue up,
# and a slip like --jobs 99999 would fork until the machine stopped answering
JOBS_PER_CPU = 4


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
    _key: str = attrs.field(init=False, eq=False, repr=False)  # looked up once per evaluation

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_key", f"{self.name}|{self.options!r}")

    @staticmethod
    def of(name: str, options: dict[str, Any]) -> "EvaluatorSpec":
        return EvaluatorSpec(name, tuple(sorted(options.items())))

    def key(self) -> str:
        return self._key


def worker_evaluator(spec: EvaluatorSpec):
    global _BUILT
    key = spec.key()
    ev = _EVALUATORS.get(key)
    if ev is None:
        with _BUILD_LOCK:
            ev = _EVALUATORS.get(key)
            if ev is None:
                from gpengine.plugins import make_evaluator

                with warnings.catch_warnings():  # the main process built it first and showed them:
                    warnings.simplefilter("ignore", GpengineWarning)  # a worker would repeat them over the bar
                    ev = make_evaluator(spec.name, dict(spec.options))
                _EVALUATORS[key] = ev
                _BUILT += 1
    return ev


def register_local(spec: EvaluatorSpec, evaluator: Any) -> None:
    """Let in-process evaluation reuse the evaluator the main process already built."""
    _EVALUATORS.setdefault(spec.key(), evaluator)


def run_task(spec: EvaluatorSpec, task: Task) -> Result:
    """Evaluate one task; never raises for a bad candidate."""
    start = time.perf_counter()
    try:
        evaluator = worker_evaluator(spec)
    except Exception as exc:  # noqa: BLE001 - a plugin's bug must not stop the search
        return _failed(exc, start)
    return guarded_evaluate(evaluator, task.expr, task.budget, task.seed, start=start)


def guarded_evaluate(evaluator: Any, expr: Expr, budget: float, seed: int, *, start: float | None = None) -> Result:
    """`evaluator.evaluate`, as the search runs it: an exception or a value that is not a `Result`
    becomes a failed Result naming it (`ValueError: ... (file.py:LINE)`); an ok result with a
    non-finite fitness becomes failed; a cost left at 0 is measured."""
    start = time.perf_counter() if start is None else start
    try:
        result = evaluator.evaluate(expr, budget=budget, seed=seed)
        if not isinstance(result, Result):
            return Result.failed(f"evaluator returned {type(result).__name__}, not a Result",
                                 cost=time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - a plugin's bug must not stop the search
        return _failed(exc, start)
    if result.status != FAILED and not math.isfinite(result.fitness):
        result = attrs.evolve(result, fitness=math.nan, status=FAILED,
                              message=result.message or "non-finite fitness")
    if result.cost == 0.0:
        result = attrs.evolve(result, cost=time.perf_counter() - start)
    return result


def worker_died(exc: BaseException, cost: float) -> Result:
    """The failed Result of an evaluation whose worker process died under it (every backend words it so)."""
    return Result.failed(f"worker died: {type(exc).__name__}: {exc}".strip(), cost=cost)


def timed_out(timeout: float, cost: float) -> Result:
    """The failed Result of an evaluation stopped after `timeout` seconds (every backend words it so)."""
    return Result.failed(f"timeout: evaluation ran past {timeout:g}s", cost=cost)


class NotStarted(Exception):
    """What a task's future raises when it was handed to a worker pool that a worker death had
    already broken, before its caller collected that death: it never ran, so it is run again,
    never charged with the death (the task that was running there carries it)."""


def _submit(pool: Any, spec: EvaluatorSpec, task: Task) -> cf.Future:
    """`run_task` started in `pool`; for a pool already broken by a worker death, a future that
    raises NotStarted, which the caller's death handling restarts the pool for."""
    try:
        return pool.submit(run_task, spec, task)
    except cf.BrokenExecutor as exc:
        future: cf.Future = cf.Future()
        future.set_exception(NotStarted(str(exc)))
        return future


def _failed(exc: BaseException, start: float) -> Result:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" ({tb[-1].filename.rsplit(os.sep, 1)[-1]}:{tb[-1].lineno})" if tb else ""
    return Result.failed(f"{type(exc).__name__}: {exc}{where}", cost=time.perf_counter() - start)


def worker_info(hold: float = 0.0) -> dict[str, Any]:
    """What a worker process is: pid, evaluators built so far, threads and device it was given.

    `hold` keeps the worker busy a moment, so that `jobs` calls land on `jobs` distinct workers.
    """
    time.sleep(hold)
    return {"pid": os.getpid(), "built": _BUILT, **{k: os.environ.get(k) for k in ("OMP_NUM_THREADS",
                                                                                   "CUDA_VISIBLE_DEVICES")}}


def _warm_up(spec: EvaluatorSpec) -> int:
    worker_evaluator(spec)
    return os.getpid()


# -- threads and devices of loky workers ---------------------------------------------------
def worker_threads(jobs: int, cores: int | None = None) -> int:
    """Threads per worker so that `jobs` workers share the usable cores (cgroup/affinity aware)."""
    return max(1, (cores or joblib.cpu_count()) // max(1, jobs))


def visible_gpus() -> tuple[str, ...]:
    """GPUs this machine offers, without importing torch: CUDA_VISIBLE_DEVICES, else nvidia-smi."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return tuple(d.strip() for d in listed.split(",") if d.strip() and not d.strip().startswith("-"))
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        out = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(line.strip() for line in out.splitlines() if line.strip())


def _init_worker(lock_dir: str | None, devices: tuple[str, ...], slots: int, parent: int | None = None) -> None:
    """Loky worker initializer: die with the main process, keep the worker for the whole
    search, and give it its GPU.

    loky replaces a worker whose memory grew by 300 MB since its first task, taking
    that for a leak; an evaluator's data and a framework's caches are not one, and a
    replacement would load the data again. Its check reads this flag in the worker.
    """
    from joblib.externals.loky import process_executor

    if parent is not None:
        die_with_parent(parent)  # SIGKILL: a worker holds nothing to save, only the main process writes
    process_executor._USE_PSUTIL = False
    if devices:
        _claim_device(lock_dir, devices, slots)


def _claim_device(lock_dir: str, devices: tuple[str, ...], slots: int) -> None:
    """Hold the lock of one free slot for this worker's life, and see only that slot's GPU.

    A file lock is released by the OS when its process dies, so a replacement worker
    takes over the slot (and the GPU) of the one it replaces.
    """
    import fcntl

    for _attempt in range(100):
        for slot in range(slots):
            fd = os.open(os.path.join(lock_dir, f"slot-{slot}.lock"), os.O_CREAT | os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            _DEVICE_LOCK.append(fd)
            os.environ["CUDA_VISIBLE_DEVICES"] = devices[slot % len(devices)]
            return
        time.sleep(0.1)  # a dying worker still holds its slot
    os.environ["CUDA_VISIBLE_DEVICES"] = devices[os.getpid() % len(devices)]


def resolve_backend(backend: str, jobs: int, isolate: bool, timeout: float | None = None) -> str:
    """`auto`: in process for one job of a cheap evaluator without a timeout, worker
    processes otherwise (only another process can stop an evaluation past its timeout)."""
    if backend == "sequential" and timeout is not None:
        raise ConfigError(f"eval_timeout={timeout:g} needs worker processes, and backend 'sequential' "
                          "evaluates in this one: use backend auto or loky, or drop eval_timeout")
    resolved = backend if backend != "auto" else (
        "loky" if (jobs > 1 or isolate or timeout is not None) else "sequential")
    # Checked here, where the processes start, not in the config: a search saved on a larger
    # machine must still load on a smaller one, to be resumed there with a smaller --jobs.
    limit = JOBS_PER_CPU * joblib.cpu_count()
    if resolved == "loky" and jobs > limit:
        raise ConfigError(f"jobs={jobs} would start that many worker processes on this machine: "
                          f"at most {limit} here ({JOBS_PER_CPU} per CPU), or use backend 'dask'")
    return resolved


class Executor:
    """Evaluate batches of tasks with the configured backend.

    `sequential` runs in this process (best for cheap evaluators: no pickling);
    `loky` keeps `jobs` worker processes alive for the whole search, with
    per-evaluation timeout and worker-death isolation; `dask` sends each task to
    a Dask distributed scheduler through joblib's dask backend (gpengine/dask_runner.py).

    `devices`: GPUs to spread loky workers over, one per worker in turn (None: every
    visible GPU when there are two or more; () : none).
    """

    def __init__(self, spec: EvaluatorSpec, jobs: int = 1, backend: str = "auto", scheduler: str | None = None,
                 timeout: float | None = None, isolate: bool = False, worker_env: dict[str, str] | None = None,
                 devices: Sequence[str] | None = None):
        self.spec = spec
        self.jobs = jobs
        self.backend = resolve_backend(backend, jobs, isolate, timeout)
        self.scheduler = scheduler
        self.timeout = timeout
        self.worker_env = dict(worker_env or {})
        self.devices = tuple(devices) if devices is not None else None
        self._pool = None
        self._dask = None  # gpengine.dask_runner.DaskRunner, for backend "dask"
        self._lock_dir: tempfile.TemporaryDirectory | None = None

    # -- lifetime -----------------------------------------------------------------------
    def __enter__(self) -> "Executor":
        if self.backend == "dask":
            from gpengine.dask_runner import DaskRunner

            self._dask = DaskRunner(self.spec, self.scheduler, self.timeout)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._dask is not None:
            self._dask.close()
            self._dask = None
        if self._pool is not None:
            # After a clean end nothing runs: let the workers exit. On an error or Ctrl-C a worker
            # may be mid-evaluation: kill it. Either way wait for loky's manager thread to finish,
            # which releases the pool's locks: without the wait they were left to loky's resource
            # tracker, which printed "leaked semlock objects" warnings after the search's last line.
            self._pool.shutdown(wait=True, kill_workers=exc_info[0] is not None)
            self._pool = None
        if self._lock_dir is not None:
            self._lock_dir.cleanup()
            self._lock_dir = None

    def _loky(self):
        if self._pool is None:
            # One count for every threading library: torch takes MKL_NUM_THREADS over OMP's.
            threads = self.worker_env.get("OMP_NUM_THREADS") or str(worker_threads(self.jobs))
            env = {**{name: threads for name in THREAD_VARS}, **self.worker_env}
            devices = self.devices if self.devices is not None else visible_gpus()
            if len(devices) < 2 or "CUDA_VISIBLE_DEVICES" in self.worker_env:
                devices = ()
            elif self._lock_dir is None:
                self._lock_dir = tempfile.TemporaryDirectory(prefix="gpengine-devices-")
            self._pool = ProcessPoolExecutor(
                max_workers=self.jobs, timeout=None, env=env, initializer=_init_worker,
                initargs=(self._lock_dir.name if devices else None, devices, self.jobs, os.getpid()))
            # Start every worker and build its evaluator (imports, data) before any clock
            # runs: the timeout is for the evaluation, not for a worker's start-up.
            warm = [self._pool.submit(_warm_up, self.spec) for _ in range(self.jobs)]
            cf.wait(warm)
        return self._pool

    def restart_workers(self) -> None:
        """Kill every worker process (a hung one cannot be interrupted); the next task starts a new pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, kill_workers=True)
            self._pool = None

    def submit(self, task: Task) -> cf.Future:
        """Start one task in a worker process (backend loky) and return its future.

        For a caller that schedules evaluations itself (gpengine.steady_async); `map` is the
        call for a batch. Such a caller owns what `map` does for it: it watches the timeout,
        takes a future that raises for a worker that died under it (`worker_died`,
        `timed_out` word the failed Results), and then calls `restart_workers()` and submits
        again what was running beside it, and what raised NotStarted."""
        return _submit(self._loky(), self.spec, task)

    def workers(self) -> list[dict[str, Any]]:
        """`worker_info()` of every worker (this process for `sequential`)."""
        if self.backend == "sequential":
            return [worker_info()]
        if self.backend == "dask":
            return self._dask.workers()
        pool = self._loky()
        return [f.result() for f in [pool.submit(worker_info, 0.3) for _ in range(self.jobs)]]

    # -- evaluation ---------------------------------------------------------------------
    def map(self, tasks: Sequence[Task], on_result: Callable[[int, Result], None] | None = None) -> list[Result]:
        """Results in task order; `on_result(i, result)` is called once per task as it arrives."""
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
            return self._dask.map(tasks, on_result)
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
            solo_ids = set(solo)
            broken = False
            while (solo or queue or running) and not broken:
                # A suspect runs alone, so a worker death under it is its own: nothing is queued beside
                # it either, the last one included (its neighbours were blamed for its next kill).
                while solo and not running:
                    i = solo.pop(0)
                    running[_submit(pool, self.spec, tasks[i])] = i
                    started[i] = time.monotonic()
                while not solo and queue and len(running) < self.jobs and solo_ids.isdisjoint(running.values()):
                    i = queue.pop(0)
                    running[_submit(pool, self.spec, tasks[i])] = i
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
                    except NotStarted:  # the pool was broken before it ran: innocent, run it again
                        todo.append(i)
                        broken = True
                        continue
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
                            results[i] = worker_died(exc, cost=time.monotonic() - started[i])
                            if on_result is not None:
                                on_result(i, results[i])
                        else:
                            suspects.append(i)
                if self.timeout is not None and not broken:
                    now = time.monotonic()
                    late = [f for f, i in running.items() if now - started[i] >= self.timeout]
                    for fut in late:
                        i = running.pop(fut)
                        results[i] = timed_out(self.timeout, cost=now - started[i])
                        if on_result is not None:
                            on_result(i, results[i])
                    broken = bool(late)
            if broken:
                # A dead or hung worker takes the pool down: start a new one, and rerun
                # what was running beside it (innocent) and what had not started yet.
                self.restart_workers()
                todo.extend(running.values())
                todo.extend(queue)
                suspects = solo + suspects
        return [r if r is not None else Result.failed("not evaluated") for r in results]
