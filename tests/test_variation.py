"""Variation operators: limits always hold, children parse back, choices are seeded."""

from __future__ import annotations

import pickle
from functools import partial

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpengine.errors import ConfigError
from gpengine.expr import CONST, OP, PARAM, Expr
from gpengine.expr_text import parse
from gpengine.init import grow
from gpengine.variation import (
    MUTATIONS,
    OPERATOR_NAMES,
    Limits,
    MutationWeights,
    _applicable,
    crossover,
    get_mutation,
    mutate_constant,
    mutate_hoist,
    mutate_point,
    mutate_shrink,
    mutate_snap,
    mutate_subtree,
    vary,
)
from primitives import get_set

ARITH = get_set("arith")
GAAF = get_set("gaaf")
WITH_PARAMS = attrs.evolve(ARITH, name="arith-params", param_slots=True)
SETS = [ARITH, GAAF, WITH_PARAMS]


@st.composite
def cases(draw):
    """(pset, limits, parent a, parent b, seed), parents within the limits."""
    pset = draw(st.sampled_from(SETS))
    max_depth = draw(st.integers(1, 8))
    max_size = draw(st.integers(1, 40))
    limits = Limits(max_depth, max_size)
    parents = []
    for _ in range(2):
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        tree = grow(rng, pset, draw(st.integers(1, max_depth)), p_const=0.4)
        while tree.size > max_size:  # cut down to size by hoisting the first child
            tree = tree.subtree(1)
        parents.append(tree)
    return pset, limits, parents[0], parents[1], draw(st.integers(0, 2**32 - 1))


def apply(name: str, seed: int, pset, limits, a: Expr, b: Expr) -> Expr:
    rng = np.random.default_rng(seed)
    if name == "crossover":
        return crossover(rng, a, b, limits)
    return MUTATIONS[name](rng, a, pset, limits)


@settings(max_examples=100, deadline=None)
@given(case=cases(), name=st.sampled_from(OPERATOR_NAMES))
def test_every_operator_respects_limits_parses_back_and_is_seeded(case, name):
    pset, limits, a, b, seed = case
    assert limits.admits(a) and limits.admits(b)
    child = apply(name, seed, pset, limits, a, b)
    assert child.depth <= limits.max_depth
    assert child.size <= limits.max_size
    assert parse(str(child), pset) == child
    assert apply(name, seed, pset, limits, a, b) == child


@settings(max_examples=80, deadline=None)
@given(case=cases())
def test_vary_respects_limits_and_reports_parents(case):
    pset, limits, a, b, seed = case
    child, op, used = vary(np.random.default_rng(seed), [a, b], pset, limits, p_crossover=0.5)
    assert limits.admits(child)
    assert op in OPERATOR_NAMES
    assert used == ((0, 1) if op == "crossover" else (0,))
    again = vary(np.random.default_rng(seed), [a, b], pset, limits, p_crossover=0.5)
    assert again == (child, op, used)


@settings(max_examples=80, deadline=None)
@given(case=cases())
def test_crossover_child_is_a_with_a_subtree_of_b(case):
    pset, limits, a, b, seed = case
    child = crossover(np.random.default_rng(seed), a, b, limits)
    if child == a:
        return
    if a.size > 1:
        assert child.root == a.root  # the root of a is never replaced
    # the child is exactly a splice of one subtree of b into a
    assert any(a.replace(i, b.subtree(j)) == child for i in range(a.size) for j in range(b.size))


def test_crossover_mixes_both_parents():
    a = parse("sin(x) + cos(x)", ARITH)
    b = parse("exp(0.5) * log(0.25)", ARITH)
    limits = Limits(10, 50)
    for seed in range(30):
        child = crossover(np.random.default_rng(seed), a, b, limits)
        names = child.op_names()
        consts = {n.value for n in child.nodes if n.kind == CONST}
        assert "add" in names  # from a
        assert names & {"mul", "exp", "log"} or consts & {0.5, 0.25}  # from b


def test_crossover_prefers_internal_points():
    a = parse("sin(x) + cos(x)", ARITH)  # internal non-root: sin, cos; leaves: x, x
    b = parse("exp(log(x))", ARITH)
    limits = Limits(10, 50)
    kept_leaves = 0
    for seed in range(400):
        child = crossover(np.random.default_rng(seed), a, b, limits)
        kept_leaves += child.nodes[1].kind == OP and child.nodes[1].name in ("exp", "log")
    # internal point of a (sin or cos) about 90% of the time, each side half of that
    assert 0.3 < kept_leaves / 400 < 0.6


def test_crossover_gives_parent_back_when_nothing_fits():
    a = parse("sin(x) + cos(x)", ARITH)
    b = parse("exp(log(sin(x)))", ARITH)
    limits = Limits(max_depth=2, max_size=3)
    assert not limits.admits(a)  # a parent over the limits stays as it is
    assert crossover(np.random.default_rng(0), a, b, limits) == a
    tight = Limits(max_depth=3, max_size=5)
    child = crossover(np.random.default_rng(0), a, b, tight)
    assert tight.admits(child)


def test_point_mutation_keeps_shape():
    rng = np.random.default_rng(0)
    e = parse("sin(x) + cos(0.5) * x", ARITH)
    for _ in range(50):
        child = mutate_point(rng, e, ARITH, Limits(10, 50))
        assert child != e
        assert [n.arity for n in child.nodes] == [n.arity for n in e.nodes]
        assert sum(a != b for a, b in zip(child.nodes, e.nodes)) == 1


def test_point_mutation_of_a_lone_x_needs_another_terminal():
    x = Expr.x()
    no_consts = attrs.evolve(ARITH, constant_range=None)
    assert mutate_point(np.random.default_rng(0), x, no_consts, Limits(5, 5)) == x
    assert mutate_point(np.random.default_rng(0), x, ARITH, Limits(5, 5)).root.kind == CONST


def test_subtree_mutation_bounded_by_max_new_depth():
    rng = np.random.default_rng(1)
    x = Expr.x()
    for _ in range(50):
        child = mutate_subtree(rng, x, ARITH, Limits(20, 200), max_new_depth=3)
        assert child.depth <= 3


def test_hoist_and_shrink_make_smaller_trees():
    rng = np.random.default_rng(2)
    e = parse("sin(x + cos(x)) * exp(x - 0.5)", ARITH)
    for _ in range(50):
        h = mutate_hoist(rng, e, ARITH, Limits(10, 50))
        s = mutate_shrink(rng, e, ARITH, Limits(10, 50))
        assert h.size < e.size and s.size < e.size
        assert any(
            e.replace(i, e.subtree(j)) == h for i in range(e.size) for j in range(i + 1, e.subtree_end(i))
        )
        assert any(e.replace(i, s.subtree(i)) == s and s.nodes[i].arity == 0 for i in range(s.size))
    assert mutate_hoist(rng, Expr.x(), ARITH, Limits(3, 3)) == Expr.x()
    assert mutate_shrink(rng, Expr.x(), ARITH, Limits(3, 3)) == Expr.x()


def test_hoist_result_is_a_subtree_replacing_its_ancestor():
    e = parse("sin(cos(x))", ARITH)
    results = {mutate_hoist(np.random.default_rng(s), e, ARITH, Limits(5, 5)) for s in range(40)}
    assert results == {parse("sin(x)"), parse("cos(x)"), parse("x")}


def test_constant_mutation_moves_one_value():
    rng = np.random.default_rng(3)
    e = parse("x * 0.5 + param(2.0)", WITH_PARAMS)
    moved = []
    for _ in range(200):
        child = mutate_constant(rng, e, WITH_PARAMS, Limits(10, 50))
        diff = [(a, b) for a, b in zip(e.nodes, child.nodes) if a != b]
        assert len(diff) == 1
        old, new = diff[0]
        assert old.kind == new.kind and old.kind in (CONST, PARAM)
        moved.append((old.kind, new.value - old.value))
    steps_c = [d for k, d in moved if k == CONST]
    steps_p = [d for k, d in moved if k == PARAM]
    assert steps_c and steps_p
    assert 0.02 < np.std(steps_c) < 0.1  # 0.1 * 0.5
    assert 0.1 < np.std(steps_p) < 0.4  # 0.1 * 2.0
    wide = mutate_constant(np.random.default_rng(3), e, WITH_PARAMS, Limits(10, 50), rel_scale=10.0)
    assert wide != e
    assert mutate_constant(rng, parse("sin(x)"), ARITH, Limits(5, 5)) == parse("sin(x)")


def test_vary_mutation_registry_override_and_weights():
    e = parse("x * 0.5", ARITH)
    only_const = MutationWeights(point=0, subtree=0, hoist=0, shrink=0, constant=1)
    child, op, used = vary(np.random.default_rng(0), [e], ARITH, Limits(5, 9), 1.0, only_const)
    assert op == "mutate-constant" and used == (0,) and child != e
    # mutations that cannot change the parent are never drawn
    ops = {vary(np.random.default_rng(s), [Expr.x()], ARITH, Limits(5, 9), 0.0)[1] for s in range(100)}
    assert ops == {"mutate-point", "mutate-subtree"}
    custom = {**MUTATIONS, "mutate-constant": partial(mutate_constant, rel_scale=100.0)}
    big, op, _ = vary(np.random.default_rng(0), [e], ARITH, Limits(5, 9), 0.0, only_const, custom)
    assert op == "mutate-constant" and abs(big.nodes[2].value - 0.5) > abs(child.nodes[2].value - 0.5)


def test_vary_crossover_rate():
    a, b = parse("sin(x) + cos(x)", ARITH), parse("exp(x) * log(x)", ARITH)
    ops = [vary(np.random.default_rng(s), [a, b], ARITH, Limits(8, 30), 0.7)[1] for s in range(300)]
    rate = ops.count("crossover") / len(ops)
    assert 0.6 < rate < 0.8
    ops1 = {vary(np.random.default_rng(s), [a], ARITH, Limits(8, 30), 1.0)[1] for s in range(30)}
    assert "crossover" not in ops1


def test_unknown_names_and_bad_values_fail_with_known_names():
    with pytest.raises(ConfigError, match="mutate-point"):
        get_mutation("mutate-nope")
    with pytest.raises(ConfigError, match="mutate-hoist"):
        MutationWeights.from_mapping({"mutate-flip": 1.0})
    with pytest.raises(ConfigError, match="mutate-snap"):
        MutationWeights.from_mapping({"mutate-flip": 1.0})
    assert MutationWeights.from_mapping({"mutate-point": 2.0, "hoist": 0.0}) == MutationWeights(point=2.0, hoist=0.0)
    with pytest.raises(ConfigError, match="numbers"):
        MutationWeights.from_mapping({"point": "lots"})
    with pytest.raises(ConfigError):
        MutationWeights(point=-1)
    with pytest.raises(ConfigError):
        MutationWeights(point=float("nan"))
    with pytest.raises(ConfigError):
        MutationWeights(0, 0, 0, 0, 0, 0)
    with pytest.raises(ConfigError):
        Limits(0, 10)
    with pytest.raises(ConfigError):
        vary(np.random.default_rng(0), [Expr.x()], ARITH, Limits(3, 3), 1.5)


def test_registry_names_match_individual_operators():
    assert OPERATOR_NAMES == (
        "crossover", "mutate-point", "mutate-subtree", "mutate-hoist", "mutate-shrink", "mutate-constant",
        "mutate-snap",
    )
    assert set(MutationWeights().as_dict()) == set(MUTATIONS)


def test_value_classes_pickle():
    for value in (Limits(7, 30), MutationWeights(point=2.0)):
        assert pickle.loads(pickle.dumps(value)) == value


def test_snap_rounds_one_fractional_constant_to_the_nearest_integer():
    rng = np.random.default_rng(0)
    pset = get_set("arith")
    expr = parse("x * 0.9903 + 2.0 - 0.4", pset)
    seen = set()
    for _ in range(40):
        child = mutate_snap(rng, expr, pset, Limits(8, 40))
        changed = [(a.value, b.value) for a, b in zip(expr.nodes, child.nodes) if a != b]
        assert len(changed) == 1  # exactly one constant moved, to the nearest whole number
        old, new = changed[0]
        assert new == round(old) and new != old
        seen.add(old)
    assert seen == {0.9903, 0.4}  # the integer 2.0 is never picked
    whole = parse("x * 1.0 + 2.0", pset)
    assert mutate_snap(rng, whole, pset, Limits(8, 40)) == whole
    assert _applicable(whole, MutationWeights().as_dict())["mutate-snap"] == 0.0
