"""Behaviour fingerprint: same function, same digest; different function, different digest."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpengine.canonical import canonicalize
from gpengine.expr import Expr
from gpengine.expr_text import parse
from gpengine.fingerprint import GRID, behaviour, fingerprint, probe_params
from primitives import formula_set, get_set
from strategies import commutative_variant, exprs

GAAF, FORMULA = get_set("gaaf"), formula_set()


def fp(text, pset=GAAF):
    return fingerprint(parse(text, pset), pset)


@pytest.mark.parametrize(
    "a, b",
    [
        ("x + x", "2.0 * x"),
        ("sin(x) + x", "x + sin(x)"),
        ("(x + 0.1) - 0.1", "x"),
        ("-(-x)", "x"),
        ("ident(x) * 1.0", "x"),
        ("x - x", "0.0"),
        ("x * x", "square(x)"),
        ("abs(x)", "max(x, -x)"),
        ("relu(x) + minzero(x)", "x"),
        ("sin(x) * scale(x)", "scale(x) * sin(x)"),
        ("blend(x, cos(x)) + x", "x + blend(x, cos(x))"),
    ],
)
def test_same_function_same_fingerprint(a, b):
    assert fp(a) == fp(b)


@pytest.mark.parametrize(
    "a, b",
    [
        ("x", "sin(x)"),
        ("x", "scale(x)"),  # equal at init (s = 1), not once s is learnt
        ("x", "shift(x)"),
        ("sin(x)", "blend(sin(x), x)"),
        ("1.0", "lconst(x)"),
        ("0.5", "0.501"),
        ("x", "x + 1e-3"),
        ("relu(x)", "relu(x) + 1e-4 * sin(x)"),
        ("scale(x) - scale(x)", "0.0"),  # two sites, two independent parameters
    ],
)
def test_different_function_different_fingerprint(a, b):
    assert fp(a) != fp(b)


def test_unary_and_binary_operators_are_told_apart():
    unary = {fp(f"{p.name}(x)") for p in GAAF.with_arity(1)}
    assert len(unary) == 22
    binary = {fp(f"{p.name}(x, sin(x))") for p in GAAF.with_arity(2)}
    assert len(binary) == 11


def test_non_finite_values_are_fingerprinted():
    inv, inv2 = fp("x ** -1.0", FORMULA), fp("x ** -2.0", FORMULA)
    assert inv != inv2
    assert fp("sin((-1.0) ** 0.5) + x", FORMULA) == fp("(-1.0) ** 0.5 + x", FORMULA)  # NaN everywhere
    assert fp("exp(1000.0 + x)", FORMULA) != fp("-exp(1000.0 + x)", FORMULA)  # +inf vs -inf


def test_behaviour_shape_and_derivatives():
    values, derivs = behaviour(parse("sin(x)", GAAF), GAAF)
    assert values.shape == derivs.shape == GRID.shape
    assert len(GRID) >= 201 and GRID.min() < -4 and GRID.max() > 4 and 0.0 in GRID
    np.testing.assert_allclose(values, np.sin(GRID), rtol=0, atol=0)
    np.testing.assert_allclose(derivs, np.cos(GRID), rtol=1e-6, atol=1e-6)


def test_parameters_at_fixed_probe_values():
    ps = probe_params(4)
    assert ps == probe_params(4) and probe_params(2) == ps[:2]
    assert all(0.5 <= p <= 1.5 for p in ps) and len(set(ps)) == 4
    values, _ = behaviour(parse("scale(x)", GAAF), GAAF)
    np.testing.assert_array_equal(values, ps[0] * GRID)
    # a param slot's initial value does not matter: it is learnt
    assert fingerprint(parse("param(0.3) * x"), GAAF) == fingerprint(parse("param(2.0) * x"), GAAF)


@pytest.mark.parametrize("a, b", [
    ("min(shift(x), x)", "x"),  # equal for a positive shift only
    ("max(shift(x), x)", "shift(x)"),
    ("relu(scale(x))", "scale(relu(x))"),  # equal for a positive scale only
    ("abs(lconst(x))", "lconst(x)"),
    ("minzero(lconst(x))", "0.0"),
    ("max(0.926, lconst(x))", "lconst(x)"),  # equal wherever the probe's constant exceeds 0.926
])
def test_functions_that_part_once_trained_are_told_apart(a, b):
    # the learnable parameters train to either sign: each pair agrees at the positive probe point alone
    assert fp(a) != fp(b)


def test_parameters_are_probed_at_a_positive_and_a_mixed_sign_point():
    from gpengine.fingerprint import probe_points

    assert probe_points(0) == [[]]
    positive, mixed = probe_points(3)
    assert positive == probe_params(3) and all(p > 0 for p in positive)
    assert mixed[0] < 0 < mixed[1] and mixed[2] < 0 and all(0.5 <= abs(p) <= 1.5 for p in mixed)
    assert len({abs(p) for p in positive + mixed}) == 6


def test_fingerprint_is_stable():
    # pinned: fingerprints are stored in journals and caches across runs and machines
    assert fp("x") == "369eacc4912f9c7a88fa6a6777acf0d0"
    assert fp("sin(x) + x") == "8513fceab84b69c0900e32de269f8c11"
    assert fp("shift(x)") == "67c59bf59e6a10fd02f50a8dfc8b85b6"


@given(data=st.data())
@settings(max_examples=100, deadline=None)
def test_rewrites_keep_the_fingerprint(data):
    e = data.draw(exprs(GAAF, max_depth=5, params=True, max_magnitude=1e3))
    f = fingerprint(e, GAAF)
    assert len(f) == 32 and int(f, 16) >= 0
    assert fingerprint(canonicalize(e, GAAF), GAAF) == f
    assert fingerprint(commutative_variant(data.draw, e, GAAF), GAAF) == f
    assert fingerprint(Expr(e.nodes), GAAF) == f
