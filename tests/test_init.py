"""Tree initialisation: depth ranges, terminal choices, GAAF templates and genes."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpengine.errors import ConfigError
from gpengine.expr import CONST, OP, PARAM, VAR, Expr
from gpengine.expr_text import parse
from gpengine.init import (
    FULL,
    GENES_3,
    GENES_6,
    GROW,
    from_genes,
    full,
    gaaf_3gene,
    gaaf_6gene,
    grow,
    ramped_half_and_half,
    ramped_plan,
    random_terminal,
    round_sig,
    to_genes,
)
from primitives import get_set
from primitives.registry import PrimitiveSet

ARITH = get_set("arith")
GAAF = get_set("gaaf")
WITH_PARAMS = attrs.evolve(ARITH, name="arith-params", param_slots=True)
X_ONLY = attrs.evolve(ARITH, name="arith-x", constant_range=None)
SETS = [ARITH, GAAF, WITH_PARAMS, X_ONLY]

seeds = st.integers(0, 2**32 - 1)
psets = st.sampled_from(SETS)


def leaf_levels(e: Expr) -> list[int]:
    return [e.depth_of(i) for i, n in enumerate(e.nodes) if n.arity == 0]


@settings(max_examples=80, deadline=None)
@given(seed=seeds, pset=psets, lo=st.integers(1, 4), extra=st.integers(0, 3))
def test_grow_depth_within_bounds(seed, pset, lo, extra):
    hi = lo + extra
    e = grow(np.random.default_rng(seed), pset, hi, lo)
    assert lo <= e.depth <= hi
    # every path reaches min_depth: no leaf sits above it
    assert min(leaf_levels(e)) + 1 >= lo
    assert parse(str(e), pset) == e


@settings(max_examples=80, deadline=None)
@given(seed=seeds, pset=psets, depth=st.integers(1, 6))
def test_full_puts_every_leaf_at_depth(seed, pset, depth):
    e = full(np.random.default_rng(seed), pset, depth)
    assert e.depth == depth
    assert set(leaf_levels(e)) == {depth - 1}
    assert parse(str(e), pset) == e


def test_grow_makes_varied_shapes_and_full_is_bushier():
    rng = np.random.default_rng(0)
    grown = [grow(rng, ARITH, 6, 2) for _ in range(200)]
    fulls = [full(rng, ARITH, 6) for _ in range(200)]
    assert len({e.depth for e in grown}) >= 4
    assert np.mean([e.size for e in fulls]) > np.mean([e.size for e in grown])


def test_depth_one_is_a_terminal_and_bad_bounds_fail():
    rng = np.random.default_rng(1)
    assert grow(rng, ARITH, 1).size == 1
    assert full(rng, GAAF, 1).size == 1
    with pytest.raises(ValueError):
        grow(rng, ARITH, 2, 3)
    with pytest.raises(ValueError):
        grow(rng, ARITH, 0)
    with pytest.raises(ValueError):
        grow(rng, PrimitiveSet("empty", []), 3, 2)


def test_terminals_follow_the_set():
    rng = np.random.default_rng(2)
    kinds = {random_terminal(rng, WITH_PARAMS, p_const=0.5).kind for _ in range(300)}
    assert kinds == {VAR, CONST, PARAM}
    assert {random_terminal(rng, ARITH, p_const=0.5).kind for _ in range(300)} == {VAR, CONST}
    assert {random_terminal(rng, X_ONLY, p_const=1.0).kind for _ in range(50)} == {VAR}
    assert {random_terminal(rng, ARITH, p_const=0.0).kind for _ in range(50)} == {VAR}
    params = [random_terminal(rng, WITH_PARAMS, 1.0) for _ in range(100)]
    assert {n.value for n in params if n.kind == PARAM} == {1.0}


def test_constants_in_range_and_short():
    rng = np.random.default_rng(3)
    lo, hi = ARITH.constant_range
    consts = [random_terminal(rng, ARITH, 1.0).value for _ in range(500)]
    assert all(lo <= c <= hi for c in consts)
    assert all(c == round_sig(c) for c in consts)
    assert max(len(repr(c)) for c in consts) <= len("-0.0001234")
    # arith draws half of its constants as the integers -1, 0, 1, the rest uniformly
    whole = [c for c in consts if c == round(c)]
    assert set(whole) == {-1.0, 0.0, 1.0}
    assert 0.4 < len(whole) / len(consts) < 0.6
    assert len(set(consts) - set(whole)) > 200


def test_integer_constants_only_where_the_set_asks():
    rng = np.random.default_rng(4)
    floats = attrs.evolve(ARITH, integer_constants=0.0)
    ints = attrs.evolve(ARITH, integer_constants=1.0)
    assert all(c != round(c) for c in (random_terminal(rng, floats, 1.0).value for _ in range(200)))
    assert {random_terminal(rng, ints, 1.0).value for _ in range(200)} == {-1.0, 0.0, 1.0}


def test_round_sig():
    assert round_sig(1.234567) == 1.235
    assert round_sig(-0.000123456) == -0.0001235
    assert repr(round_sig(-0.0)) == "0.0"


def test_ramped_plan_alternates_and_cycles():
    plan = ramped_plan(10, 2, 4)
    assert [m for m, _ in plan] == [GROW, FULL] * 5
    assert [d for _, d in plan] == [2, 2, 3, 3, 4, 4, 2, 2, 3, 3]


def test_ramped_half_and_half():
    rng = np.random.default_rng(4)
    trees = ramped_half_and_half(rng, ARITH, 60, min_depth=2, max_depth=6)
    assert len(trees) == 60
    assert all(2 <= t.depth <= 6 for t in trees)
    assert {t.depth for t in trees} == {2, 3, 4, 5, 6}
    for (method, depth), t in zip(ramped_plan(60, 2, 6), trees):
        if method == FULL:
            assert t.depth == depth and set(leaf_levels(t)) == {depth - 1}
        else:
            assert t.depth <= depth
    assert len(set(trees)) == 60  # duplicates redrawn


def test_ramped_keeps_count_when_duplicates_are_unavoidable():
    tiny = PrimitiveSet("tiny", [ARITH["neg"]])
    trees = ramped_half_and_half(np.random.default_rng(0), tiny, 6, 2, 2)
    assert trees == [parse("-x")] * 6


def test_ramped_redraws_excluded_trees_in_their_own_slot():
    # init_primitives excludes the primitives alone it proposed; at depth 2 they are most draws
    from gpengine.first_population import primitive_trees
    from gpengine.variation import Limits

    alone = frozenset(primitive_trees(ARITH, Limits(8, 40)))
    for seed in range(20):
        trees = ramped_half_and_half(np.random.default_rng(seed), ARITH, 12, min_depth=2, max_depth=4, exclude=alone)
        assert not alone & set(trees)
        for (method, depth), t in zip(ramped_plan(12, 2, 4), trees):  # each slot keeps its method and depth
            assert t.depth == depth if method == FULL else 2 <= t.depth <= depth
    tiny = PrimitiveSet("tiny", [ARITH["neg"]])  # nothing else to draw: the count is kept
    assert ramped_half_and_half(np.random.default_rng(0), tiny, 3, 2, 2, p_const=0.0,
                                exclude={parse("-x")}) == [parse("-x")] * 3


def test_init_is_deterministic_for_a_seed():
    a = ramped_half_and_half(np.random.default_rng(7), GAAF, 20)
    b = ramped_half_and_half(np.random.default_rng(7), GAAF, 20)
    c = ramped_half_and_half(np.random.default_rng(8), GAAF, 20)
    assert a == b and a != c


# -- GAAF templates ----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(seed=seeds)
def test_gaaf_3gene_shape(seed):
    e = gaaf_3gene(np.random.default_rng(seed), GAAF)
    kinds = [(n.kind, n.arity) for n in e.nodes]
    assert kinds == [(OP, 2), (OP, 1), (VAR, 0), (OP, 1), (VAR, 0)]
    genes = to_genes(e)
    assert genes is not None and len(genes) == len(GENES_3) == 3
    assert from_genes(GAAF, genes) == e
    assert parse(str(e), GAAF) == e


@settings(max_examples=60, deadline=None)
@given(seed=seeds)
def test_gaaf_6gene_shape(seed):
    e = gaaf_6gene(np.random.default_rng(seed), GAAF)
    # B2(U3(B1(U1(x), U2(x))), U4(x)) in prefix order
    kinds = [(n.kind, n.arity) for n in e.nodes]
    assert kinds == [(OP, 2), (OP, 1), (OP, 2), (OP, 1), (VAR, 0), (OP, 1), (VAR, 0), (OP, 1), (VAR, 0)]
    genes = to_genes(e)
    assert genes is not None and len(genes) == len(GENES_6) == 6
    assert from_genes(GAAF, genes) == e


def test_genes_in_slot_order():
    e = from_genes(GAAF, ("sin", "ident", "add"))
    assert e == parse("add(sin(x), ident(x))", GAAF) == parse("sin(x) + ident(x)", GAAF)
    e6 = from_genes(GAAF, ("cos", "zero", "mul", "abs", "sigmoid", "max"))
    assert e6 == parse("max(abs(cos(x) * zero(x)), sigmoid(x))", GAAF)
    assert to_genes(e6) == ("cos", "zero", "mul", "abs", "sigmoid", "max")


def test_to_genes_rejects_other_shapes():
    for text in ["x", "sin(x)", "sin(x) + x", "sin(x) + cos(0.5)", "sin(cos(x)) + ident(x)",
                 "max(abs(cos(x) * zero(x)), x + x)", "max(abs(cos(x) * zero(x)), sin(cos(x)))"]:
        assert to_genes(parse(text)) is None, text


def test_from_genes_checks_names():
    with pytest.raises(ConfigError, match="known:"):
        from_genes(GAAF, ("sin", "nope", "add"))
    with pytest.raises(ConfigError, match="binary"):
        from_genes(GAAF, ("sin", "cos", "abs"))
    with pytest.raises(ConfigError, match="3 or 6"):
        from_genes(GAAF, ("sin", "add"))


def test_templates_draw_all_genes_from_the_set():
    rng = np.random.default_rng(5)
    seen = set()
    for _ in range(400):
        seen.update(to_genes(gaaf_3gene(rng, GAAF)))
    assert seen == set(GAAF.names())
    with pytest.raises(ValueError):
        gaaf_3gene(rng, PrimitiveSet("unary-only", [ARITH["sin"]]))


BINARY_ONLY = get_set("arith:add,sub,mul")
SIZED_SETS = SETS + [BINARY_ONLY]


@settings(max_examples=150, deadline=None)
@given(seed=seeds, pset=st.sampled_from(SIZED_SETS), lo=st.integers(1, 4), extra=st.integers(0, 3),
       slack=st.integers(0, 12), method=st.sampled_from(["grow", "full", "ramped"]))
def test_init_never_passes_max_size_and_keeps_its_depths(seed, pset, lo, extra, slack, method):
    """Any max_size that fits the smallest tree of the asked depth is respected, shape rules kept."""
    from gpengine.init import smallest_size

    hi = lo + extra
    rng = np.random.default_rng(seed)
    if method == "grow":
        max_size = smallest_size(pset, lo) + slack
        trees = [grow(rng, pset, hi, lo, max_size=max_size)]
    elif method == "full":
        max_size = smallest_size(pset, hi) + slack
        trees = [full(rng, pset, hi, max_size=max_size)]
        assert set(leaf_levels(trees[0])) == {hi - 1}
    else:
        max_size = smallest_size(pset, hi) + slack
        trees = ramped_half_and_half(rng, pset, 8, min_depth=lo, max_depth=hi, max_size=max_size)
    for e in trees:
        assert e.size <= max_size
        assert lo <= e.depth <= hi and min(leaf_levels(e)) + 1 >= lo


def test_smallest_size_follows_the_smallest_arity():
    from gpengine.init import smallest_size

    assert [smallest_size(ARITH, d) for d in (1, 2, 4)] == [1, 2, 4]  # unary chains
    assert [smallest_size(BINARY_ONLY, d) for d in (1, 2, 4)] == [1, 3, 15]


@settings(max_examples=30, deadline=None)
@given(seed=seeds, pset=st.sampled_from(SIZED_SETS))
def test_a_generous_max_size_changes_no_tree(seed, pset):
    """Seeds keep their searches: the size-aware draws are the old ones wherever everything fits."""
    a = ramped_half_and_half(np.random.default_rng(seed), pset, 12, 2, 4)
    b = ramped_half_and_half(np.random.default_rng(seed), pset, 12, 2, 4, max_size=10**6)
    assert a == b


@pytest.mark.parametrize("overrides, keys", [
    (["max_size=1"], ("max_size (1)", "init_max_depth")),
    (["max_size=3", "init=grow", "init_min_depth=4"], ("max_size (3)", "init_min_depth")),
    (["init_max_depth=9"], ("init_max_depth (9)", "max_depth (8)")),
    (["strategy=gaaf", "init=gaaf6", "primitives=gaaf", "max_size=8"], ("max_size >= 9", "max_size=8")),
])
def test_limits_init_cannot_meet_are_config_errors_naming_the_keys(overrides, keys):
    from gpengine.config import build_config

    with pytest.raises(ConfigError) as err:
        build_config(evaluator="symreg", overrides=overrides)
    assert all(k in str(err.value) for k in keys) and "\n" not in str(err.value)


def test_a_binary_only_set_needs_room_for_a_full_tree():
    """The set's arities are known once the search builds: 4 levels of binary nodes are 15 nodes."""
    from gpengine.config import build_config
    from gpengine.search import Search

    cfg, opts = build_config(evaluator="symreg", overrides=[
        "primitives=arith:add,sub,mul", "max_size=10", "tracking=false", "journal=false"])
    with pytest.raises(ConfigError) as err:
        Search(cfg, opts)
    assert "max_size (10)" in str(err.value) and "init_max_depth" in str(err.value) and "15 nodes" in str(err.value)


def test_cli_max_size_below_init_is_one_line_exit_2():
    from click.testing import CliRunner

    from gpengine.cli import main

    res = CliRunner().invoke(main, ["run", "-e", "symreg", "--no-tracking", "-q", "--set", "max_size=1"])
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0 and "max_size (1)" in res.output
