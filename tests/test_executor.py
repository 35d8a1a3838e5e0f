"""Executor: the same results whatever the backend; one callback per task; workers built once.

Whole-search failure isolation (timeout, dying workers) is in test_failures.py;
here the executor's own contract, task by task.
"""

import os
import sys
import time
from collections import Counter

import pytest

from gpengine.executor import EvaluatorSpec, Executor, Task, worker_threads
from gpengine.expr_text import parse
from primitives import get_set

EXPRS = ["x", "x * x + x", "sin(x) + x", "cos(x) * x", "x * x * x", "x / (1 + x * x)", "exp(x) - 1", "x + 0.5"]


def tasks(exprs=EXPRS):
    pset = get_set("arith")
    return [Task(parse(e, pset), 1.0, 1000 + k) for k, e in enumerate(exprs)]


def spec(**options):
    return EvaluatorSpec.of("faults", {"primitives": "arith", **options})


def outcome(results):
    """Everything but the wall-clock cost."""
    return [(r.fitness, r.status, r.message, dict(r.metrics), dict(r.curves)) for r in results]


def run(executor, batch):
    calls = []
    results = executor.map(batch, on_result=lambda i, r: calls.append((i, r)))
    return results, calls


def assert_once_each(calls, results):
    assert Counter(i for i, _ in calls) == Counter(range(len(results)))
    assert all(results[i] is r for i, r in calls)


def test_sequential_and_loky_give_identical_results_and_one_callback_per_task():
    batch = tasks()
    with Executor(spec(), backend="sequential") as ex:
        seq, seq_calls = run(ex, batch)
    with Executor(spec(), jobs=2, backend="loky") as ex:
        par, par_calls = run(ex, batch)
    assert outcome(seq) == outcome(par)
    assert all(r.ok for r in seq)
    assert_once_each(seq_calls, seq)
    assert_once_each(par_calls, par)
    assert [i for i, _ in seq_calls] == list(range(len(batch)))  # sequential: in order


def test_loky_workers_build_their_evaluator_once_and_split_the_cores():
    with Executor(spec(delay=0.02), jobs=2, backend="loky") as ex:
        before = ex.workers()
        for _ in range(3):
            results, calls = run(ex, tasks())
            assert all(r.ok for r in results)
        after = ex.workers()
    assert len({w["pid"] for w in before}) == 2
    assert {w["pid"] for w in after} == {w["pid"] for w in before}  # the same two processes throughout
    assert [w["built"] for w in after] == [1, 1]  # 24 evaluations, one evaluator per worker
    assert {w["OMP_NUM_THREADS"] for w in after} == {str(worker_threads(2))}


def test_worker_threads_divide_the_cores():
    assert worker_threads(1, cores=16) == 16
    assert worker_threads(3, cores=16) == 5
    assert worker_threads(4, cores=2) == 1


def test_loky_workers_spread_over_the_gpus_one_each():
    """No GPU needed: what is checked is each worker's CUDA_VISIBLE_DEVICES."""
    with Executor(spec(fault="kill"), jobs=2, backend="loky", devices=("0", "1")) as ex:
        assert sorted(w["CUDA_VISIBLE_DEVICES"] for w in ex.workers()) == ["0", "1"]
        # a worker that dies hands its slot (and GPU) to its replacement
        results, calls = run(ex, tasks(["cos(x)", "x"]))
        assert_once_each(calls, results)
        assert "worker died" in results[0].message and results[1].ok
        assert sorted(w["CUDA_VISIBLE_DEVICES"] for w in ex.workers()) == ["0", "1"]


def test_no_gpu_pinning_with_one_device():
    with Executor(spec(), jobs=2, backend="loky", devices=("0",)) as ex:
        assert {w["CUDA_VISIBLE_DEVICES"] for w in ex.workers()} == {os.environ.get("CUDA_VISIBLE_DEVICES")}


@pytest.mark.slow
@pytest.mark.parametrize("fault, reason", [("hang", "timeout: evaluation ran past 1s"), ("kill", "worker died")])
def test_a_timed_out_or_killed_evaluation_is_reported_once_and_the_rest_complete(fault, reason):
    batch = tasks()
    with Executor(spec(fault=fault), jobs=2, backend="loky", timeout=1.0) as ex:
        results, calls = run(ex, batch)
        again, _ = run(ex, tasks(["x * x"]))  # the executor goes on working afterwards
    assert_once_each(calls, results)
    bad = [k for k, e in enumerate(EXPRS) if "cos" in e]
    for k, r in enumerate(results):
        if k in bad:
            assert r.status == "failed" and reason in r.message
        else:
            assert r.ok, r.message
    assert again[0].ok


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads process states from /proc")
def test_a_clean_end_lets_the_workers_exit_and_an_error_kills_them():
    # Killed after every search, loky's workers left a "leaked semlock objects" warning behind.
    with Executor(spec(), jobs=2, backend="loky") as ex:
        run(ex, tasks())
        pids = {w["pid"] for w in ex.workers()}
    assert len(pids) == 2 and all(not _alive(pid) for pid in pids)
    with pytest.raises(KeyboardInterrupt):
        with Executor(spec(), jobs=2, backend="loky") as ex:
            run(ex, tasks(["x"]))
            pids = {w["pid"] for w in ex.workers()}
            raise KeyboardInterrupt  # Ctrl-C mid-search: nothing waits for a worker
    deadline = time.monotonic() + 10  # killed, not joined: they go a moment later
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    """Running, not gone or a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_search_with_worker_processes_ends_without_a_resource_warning(tmp_path):
    import subprocess

    cmd = [sys.executable, "-c", "from gpengine.cli import main; main()",
           "run", "-e", "symreg", "--jobs", "2", "--no-tracking", "-q", "--set", "generations=1", "--set", "population=8"]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "leaked" not in out.stderr, out.stderr


def test_a_timeout_or_isolation_chooses_worker_processes_and_sequential_refuses_a_timeout():
    from gpengine.errors import ConfigError
    from gpengine.executor import resolve_backend

    assert resolve_backend("auto", 1, False) == "sequential"
    assert resolve_backend("auto", 1, False, 2.0) == "loky"  # only another process can stop a hang
    assert resolve_backend("auto", 1, True) == "loky"
    assert resolve_backend("auto", 2, False) == "loky"
    assert resolve_backend("dask", 1, False, 2.0) == "dask"
    with pytest.raises(ConfigError, match="eval_timeout=2 needs worker processes"):
        resolve_backend("sequential", 1, False, 2.0)


def test_local_workers_are_capped_per_cpu_where_they_start_not_in_a_saved_config():
    import joblib

    from gpengine.config import SearchConfig
    from gpengine.errors import ConfigError
    from gpengine.executor import JOBS_PER_CPU, resolve_backend

    limit = JOBS_PER_CPU * joblib.cpu_count()
    assert resolve_backend("auto", limit, False) == "loky"
    for backend in ("auto", "loky"):
        with pytest.raises(ConfigError, match=f"jobs={limit + 1} would start that many worker processes.*at most {limit}"):
            resolve_backend(backend, limit + 1, False)
    assert resolve_backend("dask", 10**5, False) == "dask"  # a cluster's size is not this machine's
    # a search saved with more jobs than this machine allows still loads, to resume with a smaller --jobs
    assert SearchConfig(evaluator="symreg", jobs=limit + 1).jobs == limit + 1


WORKERS_THEN_SLEEP = """
import json, sys, time
from gpengine.executor import EvaluatorSpec, Executor
with Executor(EvaluatorSpec.of("faults", {"primitives": "arith"}), jobs=2, backend="loky") as ex:
    print(json.dumps([w["pid"] for w in ex.workers()]), flush=True)
    time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_a_killed_main_process():
    # After kill -9 of a search, loky's workers lived on (parent pid 1), a GPU one training
    # beside the search that resumed it.
    import json
    import signal
    import subprocess

    main = subprocess.Popen([sys.executable, "-c", WORKERS_THEN_SLEEP], stdout=subprocess.PIPE, text=True)
    try:
        pids = json.loads(main.stdout.readline())
        assert len(set(pids)) == 2 and all(_alive(pid) for pid in pids)
    finally:
        main.send_signal(signal.SIGKILL)
        main.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)


def test_a_lone_task_whose_pool_was_already_broken_runs_again_and_is_not_charged(monkeypatch):
    # a submission that meets a pool broken by an earlier death never ran: charging it with that
    # death would fail it as "worker died" when it is the only task (it would run alone)
    import concurrent.futures as cf

    from gpengine import executor
    from gpengine.executor import NotStarted

    real, first = executor._submit, []

    def broken_once(pool, spec_, task):
        if not first:
            first.append(task)
            future = cf.Future()
            future.set_exception(NotStarted("A worker process managed by the executor was unexpectedly terminated"))
            return future
        return real(pool, spec_, task)

    monkeypatch.setattr(executor, "_submit", broken_once)
    with Executor(spec(), jobs=2, backend="loky") as ex:
        [result] = ex.map(tasks(["sin(x)"]))
    assert first and result.ok, result.message


def test_a_worker_rebuilding_the_evaluator_does_not_repeat_its_warnings(monkeypatch):
    """The main process built the evaluator first and showed its GpengineWarnings; a worker's
    rebuild keeps quiet about those (they would print over the progress bar), not about others."""
    import warnings

    import gpengine.plugins as plugins
    from gpengine import executor
    from gpengine.errors import GpengineWarning

    def make_evaluator(name, options):
        warnings.warn("a costly option", GpengineWarning)
        warnings.warn("something else", UserWarning)
        return object()

    monkeypatch.setattr(plugins, "make_evaluator", make_evaluator)
    spec = EvaluatorSpec.of("warns-when-built", {"k": 1})
    monkeypatch.delitem(executor._EVALUATORS, spec.key(), raising=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        built = executor.worker_evaluator(spec)
    assert [str(w.message) for w in seen] == ["something else"]
    assert executor.worker_evaluator(spec) is built  # and it is built once per worker
    executor._EVALUATORS.pop(spec.key())


def test_a_suspect_retried_alone_has_no_task_started_beside_it(monkeypatch):
    """After a worker death every task that was running is a suspect, retried one at a time with
    nothing beside it, so a death under it is its own. The last suspect used to get queued tasks
    beside it: its next kill was charged to them, and an innocent could run out of retries."""
    import gpengine.executor as executor_module

    submitted = []  # (task, future, what was in flight when it was submitted)
    real = executor_module._submit

    def spy(pool, spec_, task):
        in_flight = [t for t, f, _ in submitted if not f.done()]
        future = real(pool, spec_, task)
        submitted.append((task, future, in_flight))
        return future

    monkeypatch.setattr(executor_module, "_submit", spy)
    batch = tasks(["cos(x)", "x", "x + 0.5", "x * x", "sin(x) + x", "cos(x) + x"])
    with Executor(spec(fault="kill", delay=0.2), jobs=2, backend="loky") as ex:
        results = ex.map(batch)
    for k, r in enumerate(results):
        assert r.ok == ("cos" not in str(batch[k].expr)), (str(batch[k].expr), r.message)
    seen = Counter()
    retried = set()
    for task, _, in_flight in submitted:
        key = (str(task.expr), task.seed)
        seen[key] += 1
        assert not retried.intersection((str(t.expr), t.seed) for t in in_flight), f"{key} started beside a suspect"
        if seen[key] > 1:
            retried.add(key)
            assert not in_flight, f"suspect {key} started beside {[str(t.expr) for t in in_flight]}"
