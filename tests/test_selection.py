"""Selection schemes on hand-made populations with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpengine.errors import ConfigError
from gpengine.evaluator import Result
from gpengine.expr import Expr
from gpengine.individual import Individual
from gpengine.selection import (
    SELECTIONS,
    crowding_distance,
    dominates,
    elitism,
    fitness_proportionate,
    get_selection,
    non_dominated_sort,
    nsga2,
    pareto_front,
    rank_key,
    roulette_weights,
    tournament,
)

FAILED = None


def tree_of_size(size: int) -> Expr:
    """neg(neg(...(x))) with `size` nodes."""
    e = Expr.x()
    for _ in range(size - 1):
        e = Expr.apply("neg", e)
    return e


def ind(i: int, fitness: float | None, size: int = 1) -> Individual:
    result = Result.failed("boom") if fitness is None else Result(fitness)
    return Individual(id=i, expr=tree_of_size(size), generation=0, operator="init-grow", result=result)


def ids(inds) -> list[int]:
    return [x.id for x in inds]


POP = [ind(0, 0.1), ind(1, 0.9), ind(2, 0.5), ind(3, FAILED), ind(4, 0.7), ind(5, 0.3)]


def test_elitism_best_first_with_tie_breaks():
    assert ids(elitism(POP, 3)) == [1, 4, 2]
    assert ids(elitism(POP, 10)) == [1, 4, 2, 5, 0, 3]
    ties = [ind(0, 0.5, size=3), ind(1, 0.5, size=1), ind(2, 0.5, size=1), ind(3, 0.4)]
    assert ids(elitism(ties, 4)) == [1, 2, 0, 3]  # smaller size, then lower id
    assert elitism(POP, 0) == []


def test_tournament_with_whole_population_is_elitism():
    rng = np.random.default_rng(0)
    assert ids(tournament(rng, POP, 5, k=len(POP))) == [1] * 5
    assert ids(tournament(rng, POP, 3, k=100)) == [1] * 3


def test_tournament_k1_is_uniform_and_pressure_grows_with_k():
    rng = np.random.default_rng(1)
    picks = ids(tournament(rng, POP, 3000, k=1))
    counts = np.bincount(picks, minlength=6)
    assert counts.min() > 400  # everyone, failed included, about 500 times
    worst = ids(tournament(rng, POP, 6000, k=2)).count(3)
    assert 80 < worst < 260  # entrants drawn with replacement: the worst wins only against itself, 1/36
    mean2 = np.mean([x.fitness for x in tournament(rng, POP[:3] + POP[4:], 2000, k=2)])
    mean4 = np.mean([x.fitness for x in tournament(rng, POP[:3] + POP[4:], 2000, k=4)])
    assert mean4 > mean2


def test_tournament_is_seeded():
    a = ids(tournament(np.random.default_rng(5), POP, 20))
    b = ids(tournament(np.random.default_rng(5), POP, 20))
    assert a == b


def test_roulette_weights():
    w = roulette_weights(POP)
    assert w[3] == 0.0  # failed
    assert math.isclose(w.sum(), 1.0)
    assert w[0] > 0  # the worst measured keeps a small weight
    assert w[0] < 0.01
    assert np.all(np.diff(w[[0, 5, 2, 4, 1]]) > 0)  # ordered by fitness
    # shift: weights proportional to f - min + floor
    f = np.array([0.1, 0.9, 0.5, 0.7, 0.3])
    raw = f - 0.1 + 1e-3 * 0.8
    assert np.allclose(w[[0, 1, 2, 4, 5]], raw / raw.sum())


def test_roulette_edge_cases():
    failed = [ind(i, FAILED) for i in range(4)]
    assert np.allclose(roulette_weights(failed), 0.25)
    equal = [ind(0, 3.0), ind(1, 3.0), ind(2, FAILED)]
    assert np.allclose(roulette_weights(equal), [0.5, 0.5, 0.0])
    negative = [ind(0, -10.0), ind(1, -5.0)]
    assert roulette_weights(negative)[1] > 0.99


def test_fitness_proportionate_frequencies():
    pop = [ind(0, 0.0), ind(1, 1.0), ind(2, 3.0), ind(3, FAILED)]
    picks = ids(fitness_proportionate(np.random.default_rng(2), pop, 8000))
    freq = np.bincount(picks, minlength=4) / 8000
    assert freq[3] == 0
    assert freq[0] < 0.01
    assert abs(freq[1] - 1.003 / 4.006) < 0.03
    assert abs(freq[2] - 3.003 / 4.006) < 0.03


def test_dominance_with_failures():
    assert dominates(ind(0, 0.9, 3), ind(1, 0.5, 5))
    assert dominates(ind(0, 0.5, 3), ind(1, 0.5, 5))
    assert not dominates(ind(0, 0.9, 5), ind(1, 0.5, 3))
    assert not dominates(ind(0, 0.5, 3), ind(1, 0.5, 3))
    assert dominates(ind(0, 0.0, 50), ind(1, FAILED, 1))  # measured beats failed
    assert dominates(ind(0, FAILED, 1), ind(1, FAILED, 5))


# fitness / size; fronts: {0,1,2,3}, {4,5}, {6}, failed {7}
PARETO_POP = [
    ind(0, 0.9, 9), ind(1, 0.8, 5), ind(2, 0.6, 3), ind(3, 0.2, 1),
    ind(4, 0.85, 10), ind(5, 0.5, 4),
    ind(6, 0.4, 6),
    ind(7, FAILED, 1),
]


def test_non_dominated_sort_and_front():
    assert [sorted(f) for f in non_dominated_sort(PARETO_POP)] == [[0, 1, 2, 3], [4, 5], [6], [7]]
    assert ids(pareto_front(PARETO_POP)) == [0, 1, 2, 3]
    assert pareto_front([]) == []
    assert ids(pareto_front([ind(0, FAILED, 3), ind(1, FAILED, 2)])) == [1]


def test_nsga2_keeps_whole_fronts():
    assert sorted(ids(nsga2(PARETO_POP, 4))) == [0, 1, 2, 3]
    assert sorted(ids(nsga2(PARETO_POP, 6))) == [0, 1, 2, 3, 4, 5]
    assert ids(nsga2(PARETO_POP, 100))[-1] == 7
    assert len(nsga2(PARETO_POP, 100)) == 8


def test_nsga2_cuts_last_front_by_crowding():
    # one front on a line: ends have infinite crowding, the middle the largest gaps wins
    front = [ind(0, 1.0, 10), ind(1, 0.9, 9), ind(2, 0.89, 8), ind(3, 0.5, 5), ind(4, 0.0, 1)]
    dist = crowding_distance(front, range(5))
    assert dist[0] == dist[4] == math.inf
    assert dist[3] > dist[1] and dist[3] > dist[2]
    assert sorted(ids(nsga2(front, 3))) == [0, 3, 4]


def test_crowding_on_a_front_of_failures_is_finite_safe():
    failed = [ind(0, FAILED, 2), ind(1, FAILED, 2)]
    dist = crowding_distance(failed, [0, 1])
    assert all(d == math.inf for d in dist.values())
    assert ids(nsga2(failed, 1)) == [0]


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.tuples(st.one_of(st.none(), st.floats(-5, 5)), st.integers(1, 12)), min_size=1, max_size=25
    ),
    n=st.integers(0, 30),
)
def test_nsga2_properties(values, n):
    pop = [ind(i, f, s) for i, (f, s) in enumerate(values)]
    chosen = nsga2(pop, n)
    assert len(chosen) == min(n, len(pop))
    assert len(set(ids(chosen))) == len(chosen)
    fronts = non_dominated_sort(pop)
    assert sorted(i for f in fronts for i in f) == list(range(len(pop)))
    first = set(fronts[0])
    if n >= len(first):
        assert first <= set(ids(chosen))
    # nobody in the first front is dominated; everybody after is dominated by someone earlier
    for k, f in enumerate(fronts):
        for i in f:
            assert not any(dominates(pop[j], pop[i]) for j in f)
            if k:
                assert any(dominates(pop[j], pop[i]) for j in fronts[k - 1])


def test_registry_and_options():
    assert set(SELECTIONS) >= {"tournament", "elitism", "fitness_proportionate", "nsga2", "gaaf_mixed"}
    from gpengine.config import SELECTIONS as SETTING_NAMES
    assert set(SETTING_NAMES) <= set(SELECTIONS)  # the setting's names are the registry's
    assert get_selection("fitness-proportionate") is get_selection("fitness_proportionate")
    rng = np.random.default_rng(0)
    for name in SELECTIONS:
        got = get_selection(name)(rng, POP, 4)
        assert len(got) == 4 and all(isinstance(x, Individual) for x in got)
    assert ids(get_selection("tournament", k=6)(rng, POP, 3)) == [1, 1, 1]
    with pytest.raises(ConfigError, match="tournament"):
        get_selection("roulete")
    with pytest.raises(ConfigError, match="allowed: k"):
        get_selection("tournament", size=3)
    with pytest.raises(ConfigError, match="at least 1"):
        get_selection("tournament", k=0)
    with pytest.raises(ConfigError, match="none"):
        get_selection("elitism", k=3)


def test_gaaf_mixed_uses_all_three_modes():
    rng = np.random.default_rng(3)
    seen_best_two_only = seen_other = False
    failed_wins = 0
    for _ in range(60):
        picked = ids(get_selection("gaaf-mixed")(rng, POP, 6))
        got = set(picked)
        if got <= {1, 4}:
            seen_best_two_only = True
        else:
            seen_other = True
        failed_wins += picked.count(3)
    assert seen_best_two_only and seen_other
    assert failed_wins <= 8  # the failed one wins k=2 only against itself (1/36), never by roulette


def test_empty_population_fails_clearly():
    with pytest.raises(ValueError):
        tournament(np.random.default_rng(0), [], 2)
    assert nsga2([], 0) == []


def test_ranked_tournament_picks_what_the_plain_one_picks():
    ranked = sorted(POP, key=rank_key)
    for k in (1, 2, 3, 10):
        plain = tournament(np.random.default_rng(7), ranked, 50, k=k)
        fast = tournament(np.random.default_rng(7), ranked, 50, k=k, ranked=True)
        assert ids(fast) == ids(plain)  # same draws, same winners: the lowest index is the best entrant
