"""Hall of fame: best distinct individuals, best first, survives pickling."""

from __future__ import annotations

import pickle

import pytest

from gpengine.evaluator import Result
from gpengine.expr_text import parse
from gpengine.hall_of_fame import HallOfFame, identity_key
from gpengine.individual import Individual


def ind(i: int, fitness: float | None, text: str = "x", fingerprint: str = "", canonical: str = "") -> Individual:
    result = Result.failed("boom") if fitness is None else Result(fitness, metrics={"acc": 0.5})
    return Individual(
        id=i, expr=parse(text), generation=0, operator="init-grow", result=result,
        fingerprint=fingerprint, canonical=canonical,
    )


def ids(inds) -> list[int]:
    return [x.id for x in inds]


def test_keeps_best_first_up_to_capacity():
    hof = HallOfFame(3)
    assert len(hof) == 0 and hof.best is None
    entered = hof.update([ind(0, 0.1, "x"), ind(1, 0.5, "sin(x)"), ind(2, 0.3, "cos(x)"), ind(3, 0.9, "exp(x)")])
    assert ids(entered) == [1, 2, 3]
    assert ids(hof) == [3, 1, 2]
    assert hof.best.id == 3 and hof[0].id == 3 and len(hof) == 3
    assert ids(hof.update([ind(4, 0.2, "log(x)")])) == []
    assert ids(hof.update([ind(5, 0.4, "-x")])) == [5]
    assert ids(hof) == [3, 1, 5]


def test_distinct_by_fingerprint_then_canonical_then_text():
    hof = HallOfFame(10)
    hof.update([
        ind(0, 0.5, "x + x", fingerprint="f1"),
        ind(1, 0.6, "2.0 * x", fingerprint="f1"),  # same behaviour, better: replaces 0
        ind(2, 0.4, "x * 2.0", fingerprint="f1"),  # same behaviour, worse: ignored
        ind(3, 0.3, "sin(x)", canonical="sin(x)"),
        ind(4, 0.35, "sin(x)", canonical="sin(x)"),
        ind(5, 0.2, "cos(x)"),
        ind(6, 0.1, "cos(x)"),
    ])
    assert ids(hof) == [1, 4, 5]
    assert identity_key(ind(9, 1.0, "x", fingerprint="abc")) != identity_key(ind(9, 1.0, "x"))


def test_equal_fitness_prefers_smaller_then_older():
    hof = HallOfFame(5)
    hof.update([ind(3, 0.5, "sin(cos(x))", fingerprint="a"), ind(1, 0.5, "sin(x)", fingerprint="b"),
                ind(2, 0.5, "cos(x)", fingerprint="c")])
    assert ids(hof) == [1, 2, 3]
    hof.update([ind(7, 0.5, "x", fingerprint="a")])  # same key, smaller: replaces 3
    assert ids(hof) == [7, 1, 2]


def test_failed_never_enter():
    hof = HallOfFame(3)
    assert hof.update([ind(0, None, "x"), ind(1, None, "sin(x)")]) == []
    assert len(hof) == 0
    hof.update([ind(2, -1e9, "cos(x)")])
    assert ids(hof) == [2]


def test_iteration_is_a_snapshot():
    hof = HallOfFame(2)
    hof.update([ind(0, 0.1, "x")])
    it = iter(hof)
    hof.update([ind(1, 0.9, "sin(x)")])
    assert ids(it) == [0]
    assert ind(1, 0.9, "sin(x)") in hof


def test_pickle_round_trip():
    hof = HallOfFame(4)
    hof.update([ind(0, 0.1, "x * 0.5"), ind(1, 0.7, "sin(x)", fingerprint="fp"), ind(2, 0.3, "param(2.0) + x")])
    back = pickle.loads(pickle.dumps(hof))
    assert back.capacity == 4
    assert list(back) == list(hof)
    back.update([ind(3, 0.8, "cos(x)")])
    assert ids(back) == [3, 1, 2, 0] and ids(hof) == [1, 2, 0]


def test_bad_capacity():
    with pytest.raises(ValueError):
        HallOfFame(0)


def test_fitnesses_equal_but_for_rounding_noise_rank_the_smaller_first():
    """The audit's case: two exact fits, the bloated one 7e-34 "better" by rounding noise."""
    hof = HallOfFame(5)
    hof.update([ind(0, -3.9e-33, "x * x + x", fingerprint="small"),
                ind(1, -3.2e-33, "(x * x + x) + (x - x) * sin(x)", fingerprint="big"),
                ind(2, -0.25, "x", fingerprint="worse")])
    assert ids(hof) == [0, 1, 2]
    assert hof.best.id == 0
    # relative noise at an ordinary scale: 1 part in 1e12 is a tie, 1 part in 1e6 is not
    hof = HallOfFame(5)
    hof.update([ind(0, -2.0, "sin(cos(x))", fingerprint="a"), ind(1, -2.0 * (1 - 1e-12), "sin(sin(cos(x)))",
                                                                        fingerprint="b")])
    assert ids(hof) == [0, 1]
    hof.update([ind(2, -2.0 * (1 - 1e-6), "sin(sin(sin(cos(x))))", fingerprint="c")])
    assert ids(hof) == [2, 0, 1]


def test_same_behaviour_within_noise_keeps_the_smaller_form():
    hof = HallOfFame(5)
    hof.update([ind(0, -1e-33, "x * x", fingerprint="f")])
    hof.update([ind(1, -5e-34, "(x * x) * (1.0 + x - x)", fingerprint="f")])
    assert ids(hof) == [0]


def test_ranked_groups_ties_from_the_best_down():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from gpengine.hall_of_fame import ranked, ties

    texts = ["x", "sin(x)", "sin(sin(x))", "sin(sin(sin(x)))"]

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from([0.0, 1e-30, -1e-30, 1.0, 1.0 + 1e-12, 1.0 - 1e-12, 0.5]),
                              st.sampled_from(texts)), min_size=1, max_size=8))
    def check(entries):
        inds = [ind(i, f, t) for i, (f, t) in enumerate(entries)]
        out = ranked(inds)
        assert sorted(ids(out)) == sorted(ids(inds))
        for a, b in zip(out, out[1:]):
            assert a.fitness >= b.fitness or ties(a.fitness, b.fitness)  # never a clearly worse one first
            if a.fitness < b.fitness:  # placed before a nominally better one: only a smaller tie may be
                assert (a.size, a.id) < (b.size, b.id)
        tied_with_best = [m for m in inds if ties(m.fitness, max(i.fitness for i in inds))]
        assert out[0] == min(tied_with_best, key=lambda m: (m.size, m.id))

    check()


def record(i: int, fitness: float, budget: float, operator: str = "init-grow", replicates: int = 1) -> Individual:
    metrics = {"replicates": replicates} if operator == "reeval" else {}
    return Individual(id=i, expr=parse("x"), generation=0, operator=operator, result=Result(fitness, metrics=metrics),
                      fingerprint="fp-x", budget=budget)


def test_by_information_a_candidate_is_its_most_informed_record_not_its_luckiest():
    hof = HallOfFame(5, by_information=True)
    hof.update([record(0, 0.9, 1 / 3)])  # a lucky short run
    hof.update([record(1, 0.7, 1.0, "promote")])  # the same candidate trained in full: this is what it scores
    assert ids(hof) == [1]
    hof.update([record(2, 0.8, 1.0, "reeval", replicates=2), record(3, 0.6, 1.0, "reeval", replicates=3)])
    assert ids(hof) == [3]  # the 3-seed mean, though the 2-seed mean was higher
    plain = HallOfFame(5)
    plain.update([record(0, 0.9, 1 / 3), record(1, 0.7, 1.0, "promote")])
    assert ids(plain) == [0]  # without the option the better fitness is kept, as for one budget


def test_by_information_members_rank_by_budget_first():
    hof = HallOfFame(5, by_information=True)
    low = Individual(id=0, expr=parse("sin(x)"), generation=0, operator="init-grow", result=Result(0.95),
                     fingerprint="fp-sin", budget=1 / 3)
    hof.update([low, record(1, 0.5, 1.0)])
    assert ids(hof) == [1, 0] and hof.best.budget == 1.0
    restored = pickle.loads(pickle.dumps(hof))
    assert restored.by_information and ids(restored) == [1, 0]
