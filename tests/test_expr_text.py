"""Infix printing and the safe parser: exact round trips and clear errors."""

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gpengine.errors import ParseError
from gpengine.expr import Expr, Node
from gpengine.expr_text import parse, to_text
from primitives import formula_set, get_set
from strategies import exprs

GAAF, ARITH, FORMULA = get_set("gaaf"), get_set("arith"), formula_set()


@pytest.mark.parametrize("pset", [GAAF, ARITH, FORMULA], ids=lambda p: p.name)
@given(data=st.data())
@settings(max_examples=100, deadline=None)
def test_round_trip_is_exact(pset, data):
    e = data.draw(exprs(pset, max_depth=5, params=True))
    text = str(e)
    back = parse(text, pset)
    assert back == e, text
    # constants come back bit for bit, signed zeros included
    for a, b in zip(back.nodes, e.nodes):
        assert math.copysign(1.0, a.value) == math.copysign(1.0, b.value)
    assert parse(text) == e  # names unchecked without a set, same tree


X = Expr.x()
C = Expr.constant


def op(name, *args):
    return Expr.apply(name, *args)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("sin(x) + x", op("add", op("sin", X), X)),
        ("x * -0.5", op("mul", X, C(-0.5))),
        ("-(0.5)", op("neg", C(0.5))),
        ("-0.5", C(-0.5)),
        ("(-x) ** 2.0", op("pow", op("neg", X), C(2.0))),
        ("-x ** 2.0", op("neg", op("pow", X, C(2.0)))),
        ("-2.0 ** x", op("neg", op("pow", C(2.0), X))),
        ("(-2.0) ** x", op("pow", C(-2.0), X)),
        ("x ^ 2.0", op("pow", X, C(2.0))),
        ("x ** x ** 2.0", op("pow", X, op("pow", X, C(2.0)))),
        ("x - 1.0 - x", op("sub", op("sub", X, C(1.0)), X)),
        ("x - (1.0 - x)", op("sub", X, op("sub", C(1.0), X))),
        ("x - -x", op("sub", X, op("neg", X))),
        ("x - - 0.5", op("sub", X, op("neg", C(0.5)))),
        ("1e-3 * x", op("mul", C(0.001), X)),
        ("max(x, -0.0)", op("max", X, C(-0.0))),
        ("  blend( x ,cos(x) )  ", op("blend", X, op("cos", X))),
        ("param(-0.25) * x", op("mul", Expr((Node.param(-0.25),)), X)),
    ],
)
def test_hand_examples(text, expected):
    assert parse(text, FORMULA) == expected
    assert parse(str(expected), FORMULA) == expected


@pytest.mark.parametrize(
    "expr, text",
    [
        (op("add", op("sin", X), X), "sin(x) + x"),
        (op("mul", X, C(-0.5)), "x * -0.5"),
        (op("neg", C(0.5)), "-(0.5)"),
        (op("pow", op("neg", X), C(2.0)), "(-x) ** 2.0"),
        (op("neg", op("mul", X, X)), "-(x * x)"),
        (op("sub", X, op("add", X, X)), "x - (x + x)"),
        (op("div", op("mul", X, X), X), "x * x / x"),
    ],
)
def test_printing(expr, text):
    assert to_text(expr) == text == str(expr)


@pytest.mark.parametrize(
    "text, token, column",
    [
        ("sin(x) + * x", "'*'", 10),
        ("x $ 1.0", "'$'", 3),
        ("sin(x", "end of input", 6),
        ("x x", "'x'", 3),
        ("(x + 1.0))", "')'", 10),
        ("+x", "unary plus", 1),
        ("y + 1.0", "'y'", 1),
        ("x +", "end of input", 4),
        ("param(x)", "'x'", 7),
    ],
)
def test_errors_name_token_and_column(text, token, column):
    with pytest.raises(ParseError) as info:
        parse(text, GAAF)
    message = str(info.value)
    assert token in message
    assert f"column {column} " in message
    assert info.value.position == column - 1


def test_empty_input():
    for text in ["", "   "]:
        with pytest.raises(ParseError, match="empty"):
            parse(text)


def test_unknown_primitive_lists_known_names():
    with pytest.raises(ParseError) as info:
        parse("x + foo(x)", GAAF)
    message = str(info.value)
    assert "'foo'" in message and "column 5" in message and "gaaf" in message
    assert "sin" in message and "blend" in message
    assert message.startswith("primitive 'foo' is not in primitive set 'gaaf'"), message  # not "unknown ... is not in"


def test_operator_missing_from_set():
    with pytest.raises(ParseError, match=r"'\*\*' \(pow\) is not in primitive set 'gaaf'"):
        parse("x ** 2.0", GAAF)
    assert parse("x ** 2.0", FORMULA) == op("pow", X, C(2.0))


@pytest.mark.parametrize("text", ["sin(x, x)", "max(x)", "ident(x, x, x)"])
def test_wrong_arity(text):
    with pytest.raises(ParseError, match=r"takes \d argument\(s\), got \d at column 1"):
        parse(text, GAAF)


def test_calls_need_arguments():
    with pytest.raises(ParseError, match="argument"):
        parse("sin()")
    with pytest.raises(ParseError):
        parse("sin()", GAAF)


def test_literals_must_be_finite():
    with pytest.raises(ParseError, match="1e999"):
        parse("x * 1e999")
    with pytest.raises(ParseError):
        parse("param(1e400)")


def test_deep_nesting_is_a_parse_error():
    for text in ["(" * 50_000 + "x" + ")" * 50_000, "-" * 50_000 + "x", "sin(" * 30_000 + "x" + ")" * 30_000]:
        with pytest.raises(ParseError, match="deep"):
            parse(text)


def test_a_chain_deeper_than_the_recursion_limit_prints_and_reads_back():
    # the parser reads `x + x + ... + x` in a loop; printing it recursed once per level
    for op in ("+", "*", "-"):
        e = parse(f" {op} ".join(["x"] * 5000))
        assert e.depth == 5000 and parse(str(e)) == e


def test_not_a_string():
    with pytest.raises(ParseError):
        parse(3.0)


_PIECES = ["x", "sin", "(", ")", ",", "-", "+", "*", "/", "**", "^", "0.5", "1e", "2.", ".5", "param", " ", "e9", "$", "max"]


@given(st.one_of(st.text(max_size=40), st.lists(st.sampled_from(_PIECES), max_size=25).map("".join)))
@example("1e999")
@example("param(-)")
@example("()")
@example("x ** -")
@example("\u0663.5 * x")
@settings(max_examples=300, deadline=None)
def test_fuzz_only_parse_errors(text):
    for pset in (None, GAAF):
        try:
            e = parse(text, pset)
        except ParseError:
            continue
        assert parse(str(e), pset) == e


@pytest.mark.parametrize("open_, close", [("sin(", ")"), ("x - (", ")"), ("x ** (", ")"), ("-(", ")")])
def test_trees_nested_hundreds_deep_print_and_read_back(open_, close):
    """A search with a large max_depth journals such trees, and a resume reads them back: past about
    190 levels the recursive parser used to give up on text its own printer wrote."""
    import sys

    formula = formula_set()
    limit = sys.getrecursionlimit()
    e = parse(open_ * 600 + "x" + close * 600, formula)
    assert e.depth > 600 and parse(to_text(e), formula) == e
    assert sys.getrecursionlimit() == limit  # raised for the second try only
