"""The progress bar: proposals done, ETA, best so far, on a terminal, a sizeless pty and a file."""

from __future__ import annotations

import io
import os
import select
import sys
import time
from types import SimpleNamespace

import pytest

from gpengine.events import (GenerationEnded, GenerationStats, IndividualEvaluated, ResultArrived, SearchEnded,
                             SearchStarted)
from gpengine.progress import ProgressBar, expected_proposals


def _ind(id, fitness, expr, cached=False, generation=1, status="ok", cost=1.0, operator="crossover"):
    # the fields of an individual the bar reads
    return SimpleNamespace(id=id, fitness=fitness, expr=expr, cached=cached, generation=generation, status=status,
                           result=SimpleNamespace(cost=cost), operator=operator)


def _start(bar: ProgressBar) -> None:
    bar.on_search_start(SearchStarted(search_id="s", evaluator="toy", evaluator_version="1",
                                      engine_version="0", config={}, seed=0))


def _drive(bar: ProgressBar, fitnesses: list[float]) -> None:
    _start(bar)
    for k, fit in enumerate(fitnesses):
        ind = _ind(k, fit, f"x + {k}", cached=k % 2)
        bar.on_individual(IndividualEvaluated(ind))
    bar.on_generation(GenerationEnded(GenerationStats(generation=1, best=max(fitnesses), mean=0.0,
                                                      median=0.0, diversity=1.0, evaluations=3,
                                                      failures=0, cost=0.0)))
    bar.bar.refresh()
    bar.on_search_end(SearchEnded(best=None, hall_of_fame=(), reason="generations", elapsed=1.0))


def _read_all(fd: int) -> str:
    chunks = []
    while select.select([fd], [], [], 0.2)[0]:
        try:
            data = os.read(fd, 65536)
        except OSError:  # the other end closed
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def test_the_bar_shows_count_best_and_cache_hits_in_a_file():
    out = io.StringIO()
    _drive(ProgressBar(total=10, stream=out), [0.1, 0.7, 0.3])
    text = out.getvalue()
    assert "3/10" in text
    assert "best 0.7, gen 1, cached 1 [x + 1]" in text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pty sizes as Linux reports them")
def test_a_pty_that_reports_zero_columns_still_shows_the_bar(monkeypatch):
    # `script`, some CI runners and container shells give a pty nobody sized: 0 x 0.
    # tqdm's dynamic width then draws nothing at all, so an hour-long search looked dead.
    monkeypatch.setenv("COLUMNS", "90")
    master, slave = os.openpty()
    assert os.get_terminal_size(slave).columns == 0  # the premise: a fresh pty has no size
    stream = os.fdopen(slave, "w", buffering=1)
    # tqdm asks the terminal for its size only when it writes to sys.stderr or sys.stdout itself.
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        _drive(ProgressBar(total=10), [0.1, 0.7, 0.3])
        stream.flush()
        text = _read_all(master)
    finally:
        stream.close()
        os.close(master)
    lines = [line for line in text.replace("\r", "\n").split("\n") if line.strip()]
    assert any("3/10" in line and "best 0.7" in line for line in lines), text
    assert max(len(line) for line in lines) <= 90  # the width from $COLUMNS


def test_a_training_counts_when_it_arrives_and_not_again_when_its_batch_is_recorded():
    bar = ProgressBar(total=10, stream=io.StringIO())
    _start(bar)
    first, second = _ind(0, 0.4, "x"), _ind(1, 0.9, "sin(x)")
    bar.on_result_arrived(ResultArrived(first))
    assert (bar.bar.n, bar.best, bar.best_expr) == (1, 0.4, "x")  # moves within the batch
    bar.on_result_arrived(ResultArrived(second))
    hit = _ind(2, 0.9, "sin(x)", cached=True)  # answered by the memo
    for ind in (first, second, hit):
        bar.on_individual(IndividualEvaluated(ind))
    assert (bar.bar.n, bar.best, bar.cached) == (3, 0.9, 1)


def test_first_population_rejects_are_drawn_on_top_of_it_so_they_grow_the_total():
    bar = ProgressBar(total=10, stream=io.StringIO())
    _start(bar)
    bar.on_individual(IndividualEvaluated(_ind(0, float("-inf"), "exp(exp(x))", generation=0, status="rejected")))
    bar.on_individual(IndividualEvaluated(_ind(1, 0.3, "x", generation=0)))
    bar.on_individual(IndividualEvaluated(_ind(2, float("-inf"), "x / 0", generation=1, status="rejected")))
    assert (bar.bar.n, bar.bar.total) == (3, 11)  # a child's rejection is one of the children expected


def test_promotions_and_replicates_grow_the_total_as_they_come():
    bar = ProgressBar(total=3, stream=io.StringIO())
    _start(bar)
    for k, operator in enumerate(["crossover", "promote", "reeval", "mutate-point"]):
        bar.on_individual(IndividualEvaluated(_ind(k, 0.5, "x", operator=operator)))
    bar.on_result_arrived(ResultArrived(_ind(4, 0.5, "x", operator="promote")))  # counted on arrival
    bar.on_individual(IndividualEvaluated(_ind(4, 0.5, "x", operator="promote")))
    assert (bar.bar.n, bar.bar.total) == (5, 6)  # never past a full bar with an ETA of zero


def test_a_resumed_search_replays_its_journal_without_it_counting_as_throughput():
    """The replay of 300 journaled records takes milliseconds: as throughput it read hundreds a
    second, and the ETA zero, for the first tens of real evaluations after a resume."""
    bar = ProgressBar(total=400, stream=io.StringIO())
    _start(bar)
    for k in range(300):
        bar.on_individual(IndividualEvaluated(_ind(k, 0.5, "x"), replayed=True))
    assert bar.bar.n == 300
    for k in range(300, 304):
        time.sleep(0.12)  # past tqdm's minimum print interval, so each update enters its rate
        bar.on_individual(IndividualEvaluated(_ind(k, 0.5, "x")))
    rate = bar.bar.format_dict["rate"] or (bar.bar.n - bar.bar.initial) / bar.bar.format_dict["elapsed"]
    assert bar.bar.n == 304 and 2 < rate < 20  # about 8 a second, not 300 in no time
    quiet = ProgressBar(total=400, stream=io.StringIO(), disable=True)  # `-q`: a tqdm without counters
    _start(quiet)
    quiet.on_individual(IndividualEvaluated(_ind(0, 0.5, "x"), replayed=True))


def test_a_time_limited_search_names_the_time_it_stops_by():
    out = io.StringIO()
    bar = ProgressBar(total=10, stream=out, max_time=3600)
    _start(bar)
    later = time.strftime("%H:%M", time.localtime(time.time() + 3600))
    bar.on_individual(IndividualEvaluated(_ind(0, 1.0, "x")))
    bar.bar.refresh()
    assert f"stops by {bar.stop_by}" in out.getvalue()
    assert later in (bar.stop_by, time.strftime("%H:%M", time.localtime(time.time() + 3600)))  # a minute may turn
    assert "stops by" not in ProgressBar(total=1)._postfix()


@pytest.mark.parametrize("max_time", [1e17, 1e300])
def test_a_time_limit_past_what_the_clock_can_show_names_no_stop_time_and_the_bar_runs(max_time):
    # 1e17 s: localtime's OSError (EOVERFLOW); 1e300: time_t's OverflowError; both are valid configs
    out = io.StringIO()
    bar = ProgressBar(total=10, stream=out, max_time=max_time)
    _start(bar)
    bar.on_individual(IndividualEvaluated(_ind(0, 1.0, "x")))
    bar.bar.refresh()
    assert bar.stop_by == "" and "stops by" not in out.getvalue()
    assert "1/10" in out.getvalue() and "best 1, gen 0" in out.getvalue()


def test_a_search_with_a_limit_of_centuries_runs():
    from gpengine.config import build_config
    from gpengine.runner import make_listeners
    from gpengine.search import Search

    # the bar's stop time for max_time=1e17 crashed the search with OSError before its first evaluation
    cfg, options = build_config(evaluator="symreg", overrides=["max_time=1e17", "population=4", "generations=0",
                                                                "tracking=false", "journal=false"])
    out = Search(cfg, options, listeners=make_listeners(cfg, quiet=True)).run()
    assert out.reason == "generations" and len(out.individuals) >= 4


@pytest.mark.parametrize("extra", [[], ["mode=steady_state"], ["mode=steady_state", "jobs=3"], ["mode=async"],
                                   ["selection=nsga2"], ["offspring=7"], ["strategy=gaaf", "primitives=gaaf"],
                                   ["strategy=gaaf", "primitives=gaaf", "mode=async"]])
def test_the_total_is_what_a_search_stopped_by_its_generations_proposes(extra):
    from gpengine.config import build_config
    from gpengine.search import Search

    cfg, opts = build_config(evaluator="symreg", seed=1, overrides=[
        "population=8", "generations=3", "tracking=false", "prescreen=true", *extra])
    out = Search(cfg, opts).run()
    assert out.reason == "generations"
    counted = [i for i in out.individuals if not (i.generation == 0 and i.status == "rejected")]
    assert len(counted) == expected_proposals(cfg)


@pytest.mark.parametrize("extra", [["max_evaluations=13"], ["max_cost=0.004"], ["max_evaluations=9", "mode=async"]])
def test_a_budgeted_search_shows_what_it_spent_of_its_budget(extra):
    from gpengine.config import build_config
    from gpengine.search import Search

    cfg, opts = build_config(evaluator="symreg", seed=1, overrides=[
        "population=8", "generations=50", "tracking=false", "prescreen=true", *extra])
    search = Search(cfg, opts)
    bar = ProgressBar(total=expected_proposals(cfg), stream=io.StringIO(), max_evaluations=cfg.max_evaluations,
                      max_cost=cfg.max_cost)
    search.bus.subscribe(bar)
    out = search.run()
    assert out.reason in ("evaluations", "cost")
    fresh = [i for i in out.individuals if not i.cached and i.status != "rejected"]
    assert bar.evaluations == len(fresh) == search.candidates.evaluations  # the search's own count
    assert bar.cost == pytest.approx(search.candidates.cost)
    postfix = bar._postfix()
    if cfg.max_evaluations is not None:
        assert f", evals {bar.evaluations}/{cfg.max_evaluations} [" in postfix
    else:
        assert f", cost {bar.cost:.3g}/0.004s [" in postfix and "evals" not in postfix


def test_budget_counts_only_where_a_budget_is_set_and_seconds_read_as_seconds():
    assert "evals" not in ProgressBar(total=1)._postfix() and "cost" not in ProgressBar(total=1)._postfix()
    bar = ProgressBar(total=10, stream=io.StringIO(), max_cost=3600)
    _start(bar)
    bar.on_individual(IndividualEvaluated(_ind(0, 0.4, "x", cost=61.7)))
    bar.on_individual(IndividualEvaluated(_ind(1, 0.4, "x", cost=61.7, cached=True)))  # no training: free
    bar.on_individual(IndividualEvaluated(_ind(2, float("-inf"), "0.5", status="rejected", cost=0.0)))
    assert ", cost 62/3600s [" in bar._postfix() and bar.evaluations == 1
