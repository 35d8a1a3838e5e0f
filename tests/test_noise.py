"""Noise: elites re-evaluated with replicate seeds, fitness as mean and spread, selection on the mean."""

import math
import statistics

import pytest

import gpengine.search as search_module
from evaluators.symreg import SymbolicRegression
from gpengine import noise
from gpengine.config import build_config
from gpengine.evaluator import Result
from gpengine.expr_text import parse
from gpengine.individual import Individual
from gpengine.search import Search
from gpengine.seeds import derive_seed
from primitives import get_set


class NoisySymreg(SymbolicRegression):
    """symreg plus seed-dependent noise, like a training run."""

    def evaluate(self, expr, *, budget=1.0, seed=0):
        r = super().evaluate(expr, budget=budget, seed=seed)
        if not r.ok:
            return r
        return Result(r.fitness - 0.01 * (seed % 97) / 97, metrics=r.metrics)


@pytest.fixture
def noisy(monkeypatch):
    import gpengine.executor

    monkeypatch.setattr(search_module, "load_evaluator_class", lambda name: NoisySymreg)
    # in-process evaluators are cached per (name, options): keep the noisy one out of later tests
    monkeypatch.setattr(gpengine.executor, "_EVALUATORS", {})


def make(overrides=(), seed=0):
    cfg, opts = build_config(evaluator="symreg", overrides=["population=20", "generations=4", "tracking=false",
                                                            "replicates=3", "reeval_top=2", *overrides], seed=seed)
    return Search(cfg, opts)


def test_aggregate_is_mean_and_sample_sd():
    r = noise.aggregate(Result(3.0, metrics={"a": 1.0}), 2, [1.0, 2.0])
    assert r.fitness == pytest.approx(2.0)
    assert r.metrics["fitness_std"] == pytest.approx(1.0)
    assert r.metrics["seed_fitness"] == 3.0 and r.metrics["replicates"] == 3 and r.metrics["replicate"] == 2
    failed = noise.aggregate(Result.failed("boom"), 1, [5.0])
    assert failed.ok and failed.fitness == 5.0 and failed.metrics["replicates"] == 1 and "boom" in failed.message


def test_a_failed_replicate_is_left_out_of_the_later_means():
    e = parse("x", get_set("arith"))
    original = Individual(id=0, expr=e, generation=0, operator="init-grow", expr_hash="h", result=Result(1.0))
    failed = Individual(id=1, expr=e, generation=0, operator="reeval", expr_hash="h",
                        result=noise.aggregate(Result.failed("boom"), 1, noise.seed_values([original])))
    assert noise.seed_values([original, failed]) == [1.0]
    third = noise.aggregate(Result(3.0), 2, noise.seed_values([original, failed]))
    assert third.fitness == 2.0 and third.metrics["replicates"] == 2
    assert third.metrics["fitness_std"] == pytest.approx(statistics.stdev([1.0, 3.0]))


class FlakySymreg(NoisySymreg):
    """Fails one seed in four, as a training run that diverges or times out now and then."""

    def evaluate(self, expr, *, budget=1.0, seed=0):
        return Result.failed("diverged") if seed % 4 == 0 else super().evaluate(expr, budget=budget, seed=seed)


def test_a_search_whose_replicates_fail_now_and_then_finishes_with_means_of_the_seeds_that_measured(monkeypatch):
    import gpengine.executor

    monkeypatch.setattr(search_module, "load_evaluator_class", lambda name: FlakySymreg)
    monkeypatch.setattr(gpengine.executor, "_EVALUATORS", {})
    out = make(["reeval_top=4"], seed=1).run()
    by_id = {i.id: i for i in out.individuals}
    failed = [i for i in out.individuals if i.operator == "reeval" and "failed" in i.result.message]
    assert failed  # the seeds this search drew do hit the failure
    for r in (i for i in out.individuals if i.operator == "reeval"):
        assert math.isfinite(r.fitness)
        chain = [r]
        while chain[-1].operator == "reeval":
            chain.append(by_id[chain[-1].parent_ids[0]])
        assert r.fitness == pytest.approx(statistics.fmean(noise.seed_values(chain[::-1])))


def test_elites_get_replicate_seeds_and_selection_sees_the_mean(noisy):
    s = make(seed=3)
    out = s.run()
    by_id = {i.id: i for i in out.individuals}
    reevals = [i for i in out.individuals if i.operator == "reeval"]
    assert reevals
    for r in reevals:
        (pid,) = r.parent_ids
        parent = by_id[pid]
        assert parent.expr_hash == r.expr_hash and parent.budget == r.budget
        k = int(r.result.metrics["replicate"])
        assert r.seed == derive_seed(0 + 3, r.expr_hash, r.budget, k) and k >= 1
        # the mean over the chain's single-seed values
        chain = [r]
        while chain[-1].operator == "reeval":
            chain.append(by_id[chain[-1].parent_ids[0]])
        values = [c.result.metrics.get("seed_fitness", c.result.fitness) if c.operator == "reeval"
                  else c.result.fitness for c in chain]
        assert len(values) == r.result.metrics["replicates"] == k + 1
        assert r.fitness == pytest.approx(statistics.fmean(values))
        assert r.result.metrics["fitness_std"] == pytest.approx(statistics.stdev(values))
    assert all(r.result.metrics["replicates"] <= 3 for r in reevals)
    best = sorted(s.population, key=lambda i: -i.fitness)[:2]
    assert all(noise.n_replicates(b) == 3 and b.operator == "reeval" for b in best)
    assert all(s.current(m) is m for m in out.hall_of_fame)  # the best's record is its mean over every seed
    assert noise.n_replicates(out.best) == 3


def test_noise_resume_continues_exactly(noisy):
    sig = lambda o: [(i.id, str(i.expr), i.operator, i.parent_ids, i.seed, i.result.fitness) for i in o.individuals]
    full = make(["generations=4"], seed=5).run()
    part = make(["generations=2"], seed=5).run()
    resumed = Search.resume(part.search_id, overrides={"generations": 4}).run()
    assert sig(resumed) == sig(full)


def test_replicates_off_by_default():
    cfg, opts = build_config(evaluator="symreg", overrides=["population=10", "generations=2", "tracking=false"])
    out = Search(cfg, opts).run()
    assert not any(i.operator == "reeval" for i in out.individuals)
