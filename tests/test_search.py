"""The search loop on the cheap symreg evaluator: determinism, lineage, budgets, dedup."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpengine.config import build_config
from gpengine.events import GenerationEnded, IndividualEvaluated, SearchEnded, SearchStarted
from gpengine.expr_text import parse
from gpengine.search import Search
from primitives import get_set


def make(overrides=(), seed=0, **explicit):
    cfg, opts = build_config(
        evaluator="symreg",
        overrides=["population=40", "generations=5", "tracking=false", *overrides],
        seed=seed,
        **explicit,
    )
    return cfg, opts


def run(overrides=(), seed=0, listeners=(), **explicit):
    cfg, opts = make(overrides, seed, **explicit)
    return Search(cfg, opts, listeners=listeners).run()


def signature(outcome):
    # repr: a failed candidate's NaN fitness unpickled from a worker is a different float object,
    # and NaN equals nothing but itself
    return [(i.id, str(i.expr), i.operator, i.parent_ids, repr(i.result.fitness), i.seed) for i in outcome.individuals]


def test_same_seed_same_search_and_different_seed_differs():
    a, b, c = run(seed=3), run(seed=3), run(seed=4)
    assert signature(a) == signature(b)
    assert signature(a) != signature(c)


def test_same_result_with_one_and_two_jobs():
    one = run(seed=5)
    two = run(seed=5, jobs=2)
    assert signature(one) == signature(two)
    assert str(one.best.expr) == str(two.best.expr)


def test_lineage_is_complete_and_consistent():
    out = run(seed=1)
    by_id = {i.id: i for i in out.individuals}
    assert sorted(by_id) == list(range(len(out.individuals)))
    for ind in out.individuals:
        if ind.generation == 0:
            assert ind.operator.startswith("init-") and ind.parent_ids == ()
            continue
        assert ind.operator in {"crossover", "mutate-point", "mutate-subtree", "mutate-hoist",
                                "mutate-shrink", "mutate-constant", "mutate-snap"}
        assert len(ind.parent_ids) == (2 if ind.operator == "crossover" else 1)
        for pid in ind.parent_ids:
            assert pid in by_id and by_id[pid].generation < ind.generation
        assert ind.canonical and ind.expr_hash


def test_results_match_a_direct_evaluation():
    out = run(seed=2)
    from evaluators.symreg import SymbolicRegression

    ev = SymbolicRegression()
    for ind in out.individuals[:50]:
        direct = ev.evaluate(ind.expr)
        if direct.ok:
            assert math.isclose(ind.result.fitness, direct.fitness, rel_tol=1e-9, abs_tol=1e-12)


def test_symreg_dedups_by_canonical_form_by_default():
    out = run(seed=0)
    assert all(i.fingerprint == "" for i in out.individuals)
    fresh = [i.expr_hash for i in out.individuals if not i.cached]
    assert len(fresh) == len(set(fresh))


def test_duplicates_are_evaluated_once():
    out = run(seed=0, overrides=["generations=8", "dedup=fingerprint"])
    fresh = [i for i in out.individuals if not i.cached]
    fps = [i.fingerprint for i in fresh]
    assert len(fps) == len(set(fps)), "a fingerprint was evaluated twice"
    assert any(i.cached for i in out.individuals)
    # a cached individual carries the same result as the first with its fingerprint
    first = {}
    for i in out.individuals:
        first.setdefault(i.fingerprint, i)
        assert i.result == first[i.fingerprint].result


def test_budget_by_evaluations_and_target():
    out = run(overrides=["max_evaluations=60", "generations=100"])
    assert out.reason == "evaluations"
    assert sum(not i.cached for i in out.individuals) <= 60 + 1
    hit = run(overrides=["target_fitness=-0.5", "generations=100"])
    assert hit.reason == "target" and hit.best.fitness >= -0.5


def test_budget_by_time():
    out = run(overrides=["max_time=0.5", "generations=100000", "population=20"])
    assert out.reason == "time"
    assert out.elapsed < 5


def test_events_fire_in_order():
    seen = []

    class Recorder:
        def on_search_start(self, e):
            seen.append(type(e))

        def on_individual(self, e):
            seen.append(type(e))

        def on_generation(self, e):
            seen.append(type(e))

        def on_search_end(self, e):
            seen.append(type(e))

    out = run(listeners=[Recorder()], overrides=["generations=2"])
    assert seen[0] is SearchStarted and seen[-1] is SearchEnded
    assert seen.count(IndividualEvaluated) == len(out.individuals)
    assert seen.count(GenerationEnded) == 3  # generation 0 plus two more


@pytest.mark.parametrize("jobs", [1, 2])
def test_each_training_is_announced_as_it_arrives_then_recorded_with_its_batch(jobs):
    log = []

    class Recorder:
        def on_result_arrived(self, e):
            log.append(("arrived", e.individual.id, e.individual.result.fitness))

        def on_individual(self, e):
            log.append(("recorded", e.individual.id, e.individual.result.fitness))

    out = run(listeners=[Recorder()], overrides=["generations=2", "population=12"], jobs=jobs)
    arrived = [(i, f) for kind, i, f in log if kind == "arrived"]
    trained = [ind for ind in out.individuals if not ind.cached and ind.result.status != "rejected"]
    # one announcement per training (cache hits and rejections have none), with the recorded result
    assert sorted(arrived) == sorted((ind.id, ind.result.fitness) for ind in trained)
    assert len(trained) > 12
    # and always before the record of its batch
    for i, _ in arrived:
        assert log.index(("arrived", i, out.individuals[i].result.fitness)) < log.index(
            ("recorded", i, out.individuals[i].result.fitness))


@pytest.mark.parametrize("extra", [["mode=steady_state"], ["selection=nsga2"], ["selection=fitness_proportionate"],
                                   ["strategy=random"], ["init=grow"], ["init=full"]])
def test_strategies_run_and_improve(extra):
    out = run(seed=7, overrides=extra + ["generations=6"])
    assert out.history[-1].best >= out.history[0].best
    assert len(out.history) >= 2


def test_limits_hold_for_every_individual():
    out = run(seed=4, overrides=["max_depth=5", "max_size=15", "init_max_depth=3"])
    assert all(i.expr.depth <= 5 and i.expr.size <= 15 for i in out.individuals)


def test_elitism_keeps_the_best():
    out = run(seed=8, overrides=["elitism=2"])
    bests = [s.best for s in out.history]
    assert bests == sorted(bests)


def test_finds_the_quartic():
    """One seed of the issue's task, smaller budget: the exact quartic is found."""
    ops = "arith:add,sub,mul,div,neg,sin,cos"  # DEAP's example operators
    # seed 15, not 3: seed 3 missed with numpy 2.4.6 (tests/test_quartic.py)
    out = run(seed=15, overrides=["population=300", "generations=40", "target_fitness=-1e-9", f"primitives={ops}"])
    assert -out.best.fitness < 1e-6
    pset = get_set(ops)
    assert parse(str(out.best.expr), pset) == out.best.expr


def test_first_population_replaces_candidates_the_prescreen_rejects():
    # symreg with the pre-screen on rejects constant trees; with many constants drawn,
    # several of the first draws are rejected and must be replaced by fresh ones
    out = run(seed=4, overrides=["population=12", "generations=0", "prescreen=true", "p_const=0.6",
                                 "init_min_depth=1", "init_max_depth=2"])
    first = [i for i in out.individuals if i.generation == 0]
    rejected = [i for i in first if i.status == "rejected"]
    assert rejected, "the setting should make the pre-screen reject some first draws"
    assert len(first) > 12  # the rejected were replaced by further draws, every draw recorded
    kept = [i for i in first if i.status != "rejected"]
    assert len(kept) >= 12


@pytest.mark.parametrize("extra", [["replicates=3", "reeval_top=3"], ["replicates=3", "reeval_top=3", "mode=async"],
                                   ["fidelity=sh", "eta=2", "min_budget=0.25"],
                                   ["fidelity=sh", "eta=2", "min_budget=0.25", "mode=async"]])
def test_promotions_and_reevaluations_never_train_past_max_evaluations(extra):
    """A generation's promotions and the elites' replicates are evaluations too: they used to run
    as a whole batch past the limit (16 of 11 with replicates, 40 of 35 with successive halving)."""
    for population, cap in ((10, 11), (30, 35)):
        out = run(seed=5, overrides=[f"population={population}", "generations=20", f"max_evaluations={cap}", *extra])
        trained = [i for i in out.individuals if not i.cached and i.result.status != "rejected"]
        assert out.reason == "evaluations" and len(trained) == cap


def test_first_population_draws_never_train_past_max_evaluations():
    out = run(seed=4, overrides=["population=12", "generations=3", "prescreen=true", "p_const=0.6",
                                 "init_min_depth=1", "init_max_depth=2", "max_evaluations=5"])
    assert out.history[-1].evaluations <= 5


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), init=st.sampled_from(["ramped", "grow", "full"]),
       mode=st.sampled_from(["generational", "steady_state"]), lo=st.integers(1, 3), extra=st.integers(0, 2),
       depth_slack=st.integers(0, 3), size_slack=st.integers(0, 10))
def test_every_individual_of_any_search_respects_max_size_and_max_depth(seed, init, mode, lo, extra,
                                                                         depth_slack, size_slack):
    """Initialisation included: `--set max_size=1` used to give first populations up to size 12."""
    hi = lo + extra
    smallest = lo if init == "grow" else hi  # arith has unary primitives: the smallest tree is a chain
    max_size = smallest + size_slack
    max_depth = hi + depth_slack
    out = run([f"max_size={max_size}", f"max_depth={max_depth}", f"init={init}", f"init_min_depth={lo}",
               f"init_max_depth={hi}", f"mode={mode}", "population=8", "generations=2", "points=6", "journal=false"],
              seed=seed)
    assert len(out.individuals) >= 8
    assert all(i.size <= max_size and i.depth <= max_depth for i in out.individuals), \
        [(str(i.expr), i.operator) for i in out.individuals if i.size > max_size or i.depth > max_depth]
