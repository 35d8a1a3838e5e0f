"""Noise: elites re-evaluated with replicate seeds, fitness as mean and spread, selection on the mean."""

import statistics

import pytest

import gpengine.search as search_module
from evaluators.symreg import SymbolicRegression
from gpengine import noise
from gpengine.config import build_config
from gpengine.evaluator import Result
from gpengine.search import Search
from gpengine.seeds import derive_seed


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
