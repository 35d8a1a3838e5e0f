"""Asynchronous steady state (mode=async): reproducible in deterministic mode, overlapping, resumable."""

import time

import pytest

from gpengine.config import build_config
from gpengine.errors import ConfigError
from gpengine.search import Search


def make(overrides=(), seed=0, evaluator="symreg", listeners=()):
    cfg, opts = build_config(evaluator=evaluator, overrides=["population=16", "generations=4", "tracking=false",
                                                             "mode=async", *overrides], seed=seed)
    return Search(cfg, opts, listeners=listeners)


def sig(out):
    return [(i.id, str(i.expr), i.operator, i.parent_ids, i.budget, i.seed, i.result.fitness, i.cached)
            for i in out.individuals]


@pytest.mark.parametrize("extra", [[], ["fidelity=sh", "min_budget=0.1"], ["strategy=gaaf", "primitives=gaaf"],
                                   ["selection=nsga2"]])
def test_deterministic_async_is_the_same_with_one_and_two_workers(extra):
    one = make(["jobs=1", "async_window=3", *extra], seed=4).run()
    two = make(["jobs=2", "async_window=3", *extra], seed=4).run()
    assert sig(one) == sig(two)
    assert len(one.individuals) >= 16 * 5
    assert one.history[-1].best >= one.history[0].best


def test_window_changes_the_search_but_each_window_is_reproducible():
    a = make(["async_window=1"], seed=2).run()
    b = make(["async_window=4"], seed=2).run()
    assert sig(a) != sig(b)
    assert sig(b) == sig(make(["async_window=4"], seed=2).run())


def test_lineage_in_async_mode():
    out = make(["async_window=4", "fidelity=sh", "min_budget=0.1"], seed=1).run()
    by_id = {i.id: i for i in out.individuals}
    assert sorted(by_id) == list(range(len(out.individuals)))
    for ind in out.individuals:
        for pid in ind.parent_ids:
            assert pid < ind.id
        if ind.operator == "promote":
            assert str(by_id[ind.parent_ids[0]].expr) == str(ind.expr)


def test_a_new_offspring_starts_when_a_worker_frees():
    """Two workers, 0.25 s per evaluation: results arrive about twice as fast as one worker could make them."""
    times = []

    class Clock:
        def on_individual(self, e):
            times.append(time.monotonic())

    out = make(["jobs=2", "async_window=2", "population=8", "generations=2", "delay=0.25"], evaluator="faults",
               listeners=[Clock()]).run()
    fresh = sum(1 for i in out.individuals if not i.cached)
    span = times[-1] - times[0]
    assert span < 0.75 * fresh * 0.25, (span, fresh)


def test_async_resume_continues_exactly():
    full = make(["generations=5", "async_window=3", "fidelity=sh", "min_budget=0.1"], seed=6).run()
    part = make(["generations=2", "async_window=3", "fidelity=sh", "min_budget=0.1"], seed=6).run()
    resumed = Search.resume(part.search_id, overrides={"generations": 5}).run()
    assert sig(resumed) == sig(full)


def test_async_with_dask_is_refused():
    with pytest.raises(ConfigError, match="async"):
        build_config(evaluator="symreg", overrides=["mode=async", "backend=dask", "scheduler=tcp://x:1"])


@pytest.mark.parametrize("mode", ["async", "generational"])
def test_no_child_is_bred_from_a_candidate_the_prescreen_rejected(mode):
    """The first population holds only candidates that pass the pre-screen, in both loops: the
    rejects are drawn again (every draw recorded), not kept as parents. Async mode used to keep
    them, so with many constants drawn most first parents were rejects and the search bred
    from the two or three survivors."""
    out = make([f"mode={mode}", "population=12", "generations=2", "prescreen=true", "p_const=0.6",
                "init_min_depth=1", "init_max_depth=2", "selection=tournament"], seed=4).run()
    by_id = {i.id: i for i in out.individuals}
    first = [i for i in out.individuals if i.operator.startswith("init-")]
    assert sum(i.status == "rejected" for i in first) >= 3, "the setting should make the pre-screen reject draws"
    assert sum(i.status != "rejected" for i in first) >= 12
    children = [i for i in out.individuals if i.parent_ids and i.operator != "promote"]
    assert len(children) >= 12
    if mode == "async":  # steady state: a rejected child never displaces a working member either
        assert all(by_id[p].status != "rejected" for c in children for p in c.parent_ids)
    else:  # generational: the first generation's children come from the first population
        gen1 = [c for c in children if c.generation == 1]
        assert gen1 and all(by_id[p].status != "rejected" for c in gen1 for p in c.parent_ids)


def test_resuming_a_search_that_ran_out_of_proposals_adds_nothing(tmp_path):
    """GAAF in async mode ends ("exhausted") when no unseen genome comes out of its redraws; killed
    after that last checkpoint (while MLflow closes, say) and resumed, it used to draw again from
    the saved generator and go on as a longer, different search."""
    from gpengine.journal import read_journal

    def journal():
        return [(i.id, str(i.expr), i.operator, i.parent_ids, i.result.fitness)
                for i in read_journal(tmp_path / "s" / "journal.jsonl")]

    cfg, opts = build_config(evaluator="symreg", seed=5, overrides=[
        "population=9", "generations=6", "strategy=gaaf", "mode=async", "async_window=2", "backend=sequential",
        "tracking=false", "points=8", f"runs_dir={tmp_path}"])
    out = Search(cfg, opts, search_id="s").run()
    assert out.reason == "exhausted", "the arith set's few genomes should run out"
    before = journal()
    again = Search.resume("s", runs_dir=str(tmp_path)).run()
    assert again.reason == "exhausted"
    assert journal() == before
