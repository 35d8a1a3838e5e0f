"""Successive halving (fidelity=sh): the ladder, the promotion rule, lineage of promoted records, resume."""

import math

import pytest

from gpengine import fidelity
from gpengine.config import build_config
from gpengine.errors import ConfigError
from gpengine.evaluator import Result
from gpengine.expr_text import parse
from gpengine.individual import Individual
from gpengine.search import Search
from primitives import get_set


def test_ladder_is_geometric_and_ends_at_the_budget():
    assert fidelity.ladder(0.1, 1.0, 3) == pytest.approx((1 / 9, 1 / 3, 1.0))
    assert fidelity.ladder(0.25, 1.0, 3) == pytest.approx((1 / 3, 1.0))  # bnn quick: 1 then 4 epochs
    assert fidelity.ladder(0.25, 1.0, 2) == pytest.approx((0.25, 0.5, 1.0))
    assert fidelity.ladder(1.0, 1.0, 3) == (1.0,)


def rec(i, fitness, budget, expr="x", operator="init-grow"):
    e = parse(expr, get_set("arith"))
    return Individual(id=i, expr=e, generation=0, operator=operator, expr_hash=f"h{expr}", budget=budget,
                      result=Result(fitness) if math.isfinite(fitness) else Result.failed("bad"))


def test_promotions_take_the_top_third_of_each_rung_once():
    rungs = (1 / 9, 1 / 3, 1.0)
    pop = [rec(i, float(i), rungs[0], expr=f"x + {i}") for i in range(7)]
    due = fidelity.promotions(pop, rungs, 3)
    assert [(r.id, b) for r, b in due] == [(6, rungs[1]), (5, rungs[1])]  # floor(7 / 3) = 2, best first
    assert fidelity.promotions(pop, rungs, 3, pending=[("hx + 6", rungs[1])])[0][0].id == 5
    done = pop + [rec(7, 60.0, rungs[1], expr="x + 6", operator="promote"),
                  rec(8, 50.0, rungs[1], expr="x + 5", operator="promote")]
    assert fidelity.promotions(done, rungs, 3) == []  # rung 1 has 2 members: floor(2/3) = 0
    failed = [rec(i, math.nan, rungs[0], expr=f"x + {i}") for i in range(6)]
    assert fidelity.promotions(failed, rungs, 3) == []


def search(overrides=(), seed=0):
    cfg, opts = build_config(evaluator="symreg", overrides=["population=30", "generations=4", "tracking=false",
                                                            "fidelity=sh", "min_budget=0.1", "eta=3", *overrides],
                             seed=seed)
    return Search(cfg, opts)


def test_promoted_records_have_lineage_and_every_rung_is_kept():
    s = search(seed=2)
    out = s.run()
    by_id = {i.id: i for i in out.individuals}
    promoted = [i for i in out.individuals if i.operator == "promote"]
    assert {round(i.budget, 6) for i in promoted} == {round(1 / 3, 6), 1.0}
    for p in promoted:
        (parent_id,) = p.parent_ids
        parent = by_id[parent_id]
        assert parent.id < p.id and parent.generation <= p.generation
        assert str(parent.expr) == str(p.expr) and parent.expr_hash == p.expr_hash
        assert p.budget == pytest.approx(parent.budget * 3)  # exactly one rung up
        assert not p.cached  # a new evaluation at a new budget
    fresh = [i for i in out.individuals if i.operator not in ("promote",)]
    assert all(i.budget == pytest.approx(1 / 9) for i in fresh)  # new candidates start at the bottom
    # ASHA's rule: when promoted, the parent was in the top floor(n / eta) of its rung so far
    from gpengine.selection import rank_key

    for p in promoted:
        parent = by_id[p.parent_ids[0]]
        rung = {}
        for i in out.individuals[: p.id]:
            if i.budget == parent.budget and i.operator != "reeval" and i.result.status != "rejected":
                rung.setdefault(fidelity.identity(i), i)
        top = sorted(rung.values(), key=rank_key)[: len(rung) // 3]
        assert fidelity.identity(parent) in {fidelity.identity(t) for t in top}
    # selection sees each candidate's highest-fidelity record
    for member in s.population:
        same = [i for i in out.individuals if fidelity.identity(i) == fidelity.identity(member) and i.result.ok]
        assert member.budget == max(i.budget for i in same)
    # so does the hall of fame, the reported best: highest budget first, each candidate's highest-fidelity record
    assert [m.budget for m in out.hall_of_fame] == sorted((m.budget for m in out.hall_of_fame), reverse=True)
    assert out.best.budget == 1.0
    assert all(s.current(m) is m for m in out.hall_of_fame)


def test_sh_works_in_steady_state_and_with_nsga2():
    for extra in (["mode=steady_state"], ["selection=nsga2"]):
        out = search(extra, seed=1).run()
        assert any(i.operator == "promote" for i in out.individuals)
        assert out.history[-1].best >= out.history[0].best


def test_sh_resume_continues_exactly():
    full = search(["generations=4"], seed=7).run()
    part = search(["generations=2"], seed=7).run()
    resumed = Search.resume(part.search_id, overrides={"generations": 4}).run()
    sig = lambda o: [(i.id, str(i.expr), i.operator, i.parent_ids, i.budget, i.result.fitness) for i in o.individuals]
    assert sig(resumed) == sig(full)


def test_bad_fidelity_keys_fail_naming_the_key():
    with pytest.raises(ConfigError, match="eta"):
        build_config(evaluator="symreg", overrides=["eta=1"])
    with pytest.raises(ConfigError, match="fidelity"):
        build_config(evaluator="symreg", overrides=["fidelity=hyper"])
    with pytest.raises(ConfigError, match="min_budget"):
        build_config(evaluator="symreg", overrides=["min_budget=0"])


def test_nsga2_with_successive_halving_on_bnn_cifar(tmp_path):
    """Tree GP's NSGA-II over (fitness, size) with promotions, on the real evaluator (tiny fake CIFAR-10)."""
    pytest.importorskip("torch")
    from gpengine.selection import dominates
    from tests.bnn_fakes import write_fake_cifar

    write_fake_cifar(tmp_path / "data", per_batch=60, n_test=50)
    cfg, opts = build_config(evaluator="bnn-cifar", overrides=[
        "population=4", "offspring=2", "generations=1", "tracking=false", "selection=nsga2", "fidelity=sh", "eta=2", "min_budget=0.5",
        "isolate=false", "prescreen=false", "profile=smoke", "width=4", "epochs=2", "train_size=192", "val_size=100",
        "batch_size=64", "threads=1", "abort=off", f"data_dir={tmp_path / 'data'}"], seed=0)
    s = Search(cfg, opts)
    out = s.run()
    assert s.rungs == pytest.approx((0.5, 1.0))
    promoted = [i for i in out.individuals if i.operator == "promote"]
    assert promoted and all(p.budget == 1.0 and p.result.metrics["epochs_run"] == 2 for p in promoted)
    assert all(i.result.metrics.get("epochs_run", 1) == 1 for i in out.individuals if i.operator != "promote")
    assert len(s.population) == 4
    first = s.population[0]  # NSGA-II lists the first front first: nothing dominates its members
    assert math.isfinite(first.fitness) and not any(dominates(p, first) for p in s.population)
