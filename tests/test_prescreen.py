"""Pre-screen: activations that cannot train are rejected with the right reason."""

import pytest
from hypothesis import given, settings

from gpengine.expr_text import parse
from gpengine.prescreen import (
    BLOWS_UP,
    CONSTANT,
    DEGENERATE_SIGN,
    NON_FINITE,
    REASONS,
    ZERO_GRADIENT,
    prescreen,
)
from primitives import formula_set, get_set
from strategies import exprs

GAAF, FORMULA = get_set("gaaf"), formula_set()


@pytest.mark.parametrize(
    "text, reason",
    [
        ("0.5", CONSTANT),
        ("zero(x)", CONSTANT),
        ("x - x", CONSTANT),
        ("lconst(x)", CONSTANT),  # learnable, but constant whatever s is
        ("sin(x) - sin(x) + -0.2", CONSTANT),
        ("relu(x)", DEGENERATE_SIGN),  # sign(0) = +1: always +1
        ("square(x) + 0.1", DEGENERATE_SIGN),
        ("-gauss(x)", DEGENERATE_SIGN),
        # +1 at x = 0 alone, which a batch-normalised input never is: every image gets one answer
        ("-x * x", DEGENERATE_SIGN),
        ("min(x, -x)", DEGENERATE_SIGN),
        ("sin(x) - abs(x)", DEGENERATE_SIGN),
        ("atan(x) - relu(x)", DEGENERATE_SIGN),
        ("gauss(x) - lconst(x)", DEGENERATE_SIGN),  # at s = 1 and at both probe points
        ("1e-07 * x", ZERO_GRADIENT),  # slope below the STE's noise floor
        ("erf(1000.0 * x)", ZERO_GRADIENT),  # a step: flat except at one point
        ("1000.0 * x", ZERO_GRADIENT),  # clipped almost everywhere
        ("div(1.0, x)", BLOWS_UP),  # 1 / (0 + 1e-8) at x = 0
        ("cube(cube(cube(x)))", BLOWS_UP),
        ("ratio(x, 2.0)", BLOWS_UP),  # x / (x + 2 + 1e-8) at x = -2
    ],
)
def test_rejected_with_reason(text, reason):
    assert prescreen(parse(text, GAAF), GAAF) == reason


@pytest.mark.parametrize(
    "text, reason",
    [
        ("x ** -1.0", NON_FINITE),  # inf at x = 0
        ("(-1.0) ** 0.5 + x", NON_FINITE),  # NaN
        ("x ** 0.5", NON_FINITE),  # NaN for x < 0
        ("exp(exp(x * 3.0))", NON_FINITE),
    ],
)
def test_non_finite_rejected(text, reason):
    assert prescreen(parse(text, FORMULA), FORMULA) == reason


@pytest.mark.parametrize(
    "text",
    [
        "x",
        "sin(x)",
        "sin(x) + x",
        "x + sin(x)",
        "atan(x)",
        "ssqrt(x)",
        "scale(x)",
        "shift(x)",
        "10.0 * x",
        "gate(x, sin(x))",
        "blend(x, cos(x)) - 0.5",
        "ratio(x, 5.0)",
    ],
)
def test_accepted(text):
    assert prescreen(parse(text, GAAF), GAAF) is None


def test_learnable_parameters_can_rescue():
    # at init (beta = 1) blend(sin(x), 1.0) is sin(x): fine; blend(1.0, sin(x)) is the
    # constant 1.0, but beta moves in training, so it is not rejected as constant
    assert prescreen(parse("blend(sin(x), 1.0)", GAAF), GAAF) is None
    assert prescreen(parse("blend(0.0, sin(x))", GAAF), GAAF) is None
    # ...unless the probe values show the same trouble
    assert prescreen(parse("scale(zero(x))", GAAF), GAAF) == CONSTANT
    # one-signed at the start and at the positive probe point, both signs once the parameter is below
    # 1 (cos(x) - s) or below 0 (2 relu(x) + b, with b starting at 0): the mixed-sign probe point shows it
    assert prescreen(parse("cos(x) - lconst(x)", GAAF), GAAF) is None
    assert prescreen(parse("abs(x) + shift(x)", GAAF), GAAF) is None


@given(exprs(GAAF, max_depth=5, params=True))
@settings(max_examples=100, deadline=None)
def test_any_expression_gets_none_or_a_known_reason(e):
    assert prescreen(e, GAAF) in (None, *REASONS)


@given(exprs(FORMULA, max_depth=4, params=True))
@settings(max_examples=50, deadline=None)
def test_any_formula_gets_none_or_a_known_reason(e):
    assert prescreen(e, FORMULA) in (None, *REASONS)


def test_the_gaaf_primitives_alone_that_cannot_train_are_turned_away():
    # init_primitives proposes each primitive applied to x once; these never cost a training
    from gpengine.canonical import canonicalize
    from gpengine.first_population import primitive_trees
    from gpengine.variation import Limits

    verdicts = {str(t): prescreen(canonicalize(t, GAAF), GAAF) for t in primitive_trees(GAAF, Limits(8, 40))}
    assert len(verdicts) == 33
    assert {t for t, why in verdicts.items() if why == CONSTANT} == {
        "zero(x)", "lconst(x)", "x - x", "rbf(x, x)", "lapl(x, x)"}
    assert {t for t, why in verdicts.items() if why == DEGENERATE_SIGN} == {
        "square(x)", "sigmoid(x)", "erfc(x)", "expnabs(x)", "gauss(x)", "relu(x)", "abs(x)", "x * x", "x / x",
        "ratio(x, x)"}
    assert {t for t, why in verdicts.items() if why is None} >= {"shift(x)", "scale(x)", "gate(x, x)", "sin(x)"}
