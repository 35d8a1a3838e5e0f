"""GAAF's GA (strategy=gaaf): genome shapes, one-gene mutation, admission, steady-state replacement, resume."""

import math

import numpy as np
import pytest

from gpengine import gaaf_ga
from gpengine.config import build_config
from gpengine.errors import ConfigError
from gpengine.evaluator import Result
from gpengine.individual import Individual
from gpengine.init import from_genes, to_genes
from gpengine.search import Search
from primitives import get_set

GAAF = get_set("gaaf")


def run(overrides=(), seed=0, **explicit):
    cfg, opts = build_config(
        evaluator="symreg",
        overrides=["strategy=gaaf", "primitives=gaaf", "target=sin(x)+x", "population=12", "generations=6",
                   "tracking=false", *overrides],
        seed=seed, **explicit,
    )
    return Search(cfg, opts).run()


def test_mutate_gene_changes_exactly_one_gene_to_the_same_arity():
    rng = np.random.default_rng(0)
    for genes in [("sin", "ident", "add"), ("sin", "ident", "add", "cos", "relu", "mul")]:
        parent = from_genes(GAAF, genes)
        for _ in range(50):
            child = gaaf_ga.mutate_gene(rng, parent, GAAF)
            new = to_genes(child)
            diff = [i for i, (a, b) in enumerate(zip(genes, new)) if a != b]
            assert len(diff) == 1
            assert GAAF.get(new[diff[0]]).arity == GAAF.get(genes[diff[0]]).arity


def ind(i, fitness, status="ok", **metrics):
    res = Result(fitness, status, metrics=metrics) if status != "failed" else Result.failed("x")
    return Individual(id=i, expr=from_genes(GAAF, ("sin", "ident", "add")), generation=0, operator="init-gaaf3",
                      result=res)


def test_admission_threshold_configured_then_evaluator_floor_then_none():
    assert gaaf_ga.threshold(ind(0, 50.0), 11.0, None) == 11.0
    assert gaaf_ga.threshold(ind(0, 50.0, abort_floor=33.0), None, None) == 33.0

    class Floor:
        degenerate_floor = 10.0

    assert gaaf_ga.threshold(ind(0, 50.0), None, Floor()) == 10.0
    assert gaaf_ga.threshold(ind(0, 50.0), None, object()) == -math.inf
    assert not gaaf_ga.admitted(ind(0, 30.0, abort_floor=33.0), None, None)
    assert not gaaf_ga.admitted(ind(0, 40.0, status="aborted"), None, None)
    assert not gaaf_ga.admitted(ind(0, math.nan, status="failed"), None, None)
    assert gaaf_ga.admitted(ind(0, 40.0, abort_floor=33.0), None, None)


def test_replace_worst_only_when_admitted_and_better():
    pop = [ind(0, 40.0), ind(1, 20.0), ind(2, 30.0)]
    children = [ind(3, 25.0), ind(4, 10.0), ind(5, 90.0, abort_floor=95.0), ind(6, 26.0, status="aborted")]
    out = gaaf_ga.replace_worst(pop, children, None, None)
    assert [p.id for p in out] == [0, 3, 2]  # 3 beat the worst (20); 4 worse; 5 under its floor; 6 aborted
    assert [p.id for p in gaaf_ga.replace_worst(pop, [ind(3, 25.0)], 26.0, None)] == [0, 1, 2]  # configured


def test_an_admitted_child_takes_a_free_place_while_the_population_is_short():
    pop = [ind(0, 40.0), ind(1, 20.0)]  # a strict threshold admitted two of a population of three
    out = gaaf_ga.replace_worst(pop, [ind(3, 10.0), ind(4, 25.0), ind(5, 5.0)], None, None, capacity=3)
    assert [p.id for p in out] == [0, 1, 4]  # 3 fills the place, whatever its score; 4 then replaces it, the worst


def test_a_strict_admission_threshold_fills_the_population_with_admitted_children():
    from gpengine.config import build_config
    from gpengine.search import Search

    cfg, opts = build_config(evaluator="symreg", seed=0, overrides=[
        "strategy=gaaf", "primitives=gaaf", "target=sin(x) + x", "population=30", "generations=15",
        "tracking=false", "admission=-0.05"])
    s = Search(cfg, opts)
    out = s.run()
    first = [i for i in out.individuals if i.generation == 0]
    assert sum(gaaf_ga.admitted(i, -0.05, None) for i in first) < 30  # the draws left it short
    admitted_children = [i for i in out.individuals if i.generation > 0 and gaaf_ga.admitted(i, -0.05, None)]
    assert len(s.population) == min(30, sum(gaaf_ga.admitted(i, -0.05, None) for i in out.individuals))
    assert {i.id for i in admitted_children} <= {p.id for p in s.population} or len(s.population) == 30


def test_gaaf_search_shapes_lineage_and_no_repeated_genome():
    out = run(seed=3)
    records = out.individuals
    genomes = [to_genes(i.expr) for i in records]
    assert all(g is not None and len(g) == 3 for g in genomes)
    assert len(set(genomes)) == len(genomes), "an exact genome was evaluated twice"
    by_id = {i.id: i for i in records}
    for r in records:
        if r.operator == "init-gaaf3":
            assert r.parent_ids == ()
        else:
            assert r.operator == "mutate-gene" and len(r.parent_ids) == 1
            parent = to_genes(by_id[r.parent_ids[0]].expr)
            assert sum(a != b for a, b in zip(parent, to_genes(r.expr))) == 1
    per_gen = {}
    for r in records:
        per_gen[r.generation] = per_gen.get(r.generation, 0) + 1
    assert all(per_gen[g] <= 10 for g in range(1, 7))  # GAAF: 10 children a generation
    bests = [s.best for s in out.history]
    assert bests == sorted(bests)  # steady state never loses its best


def test_six_gene_shape_and_admission_fills_the_population():
    out = run(["init=gaaf6", "admission=-0.3"], seed=1)
    assert all(len(to_genes(i.expr)) == 6 for i in out.individuals)
    first = [i for i in out.individuals if i.generation == 0]
    assert len(first) > 12  # some were not admitted, more were drawn
    assert out.history[0].best > -0.3


def test_init_must_be_a_gaaf_shape():
    with pytest.raises(ConfigError, match="init"):
        build_config(evaluator="symreg", overrides=["strategy=gaaf", "init=grow"])


def test_gaaf_resume_continues_exactly():
    full = run(["generations=6"], seed=5)
    part = run(["generations=3"], seed=5)
    resumed = Search.resume(part.search_id, overrides={"generations": 6}).run()
    sig = lambda o: [(i.id, str(i.expr), i.operator, i.parent_ids, i.result.fitness) for i in o.individuals]
    assert sig(resumed) == sig(full)
