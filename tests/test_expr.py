"""The genome: shape queries, splicing, immutability, value semantics, pickling."""

import pickle

import attrs
import pytest
from hypothesis import given, settings

from gpengine.expr import CONST, OP, PARAM, VAR, Expr, Node
from gpengine.expr_text import parse
from primitives import get_set
from strategies import exprs

GAAF = get_set("gaaf")


def test_size_and_depth():
    e = parse("sin(x) + x * 2.0")
    assert e.size == len(e) == 6
    assert e.depth == 3
    assert Expr.x().depth == 1 and Expr.x().size == 1


def test_node_kinds():
    e = parse("scale(x) + param(0.5) - -1.5")
    kinds = [n.kind for n in e.nodes]
    assert kinds == [OP, OP, OP, VAR, PARAM, CONST]
    assert e.n_params == 1
    assert e.constant_indices() == [5]
    assert e.op_names() == {"sub", "add", "scale"}


def test_children_subtree_and_replace():
    e = parse("add(sin(x), mul(x, 2.0))")
    assert e.children(0) == [1, 3]
    assert e.subtree(1) == parse("sin(x)")
    assert e.subtree(3) == parse("x * 2.0")
    assert e.args() == [parse("sin(x)"), parse("x * 2.0")]
    assert e.children(3) == [4, 5]
    assert e.depth_of(0) == 0 and e.depth_of(2) == 2 and e.depth_of(5) == 2
    swapped = e.replace(1, parse("cos(x + 1.0)"))
    assert swapped == parse("cos(x + 1.0) + x * 2.0")
    assert e == parse("sin(x) + x * 2.0")  # the original is untouched
    assert e.replace(0, Expr.x()) == Expr.x()
    assert e.with_node(3, Node.op("sub", 2)) == parse("sin(x) + (x - 2.0)")  # children kept
    assert e.with_node(5, Node.const(3.0)) == parse("sin(x) + x * 3.0")


@given(exprs(GAAF, max_depth=5))
@settings(max_examples=100, deadline=None)
def test_subtree_extents_are_consistent(e):
    for i, sub in e.iter_subtrees():
        assert sub.size == e.subtree_end(i) - i
        assert sub.depth == e.subtree_depth(i)
        assert e.replace(i, sub) == e
        if e.nodes[i].arity:
            kids = e.children(i)
            assert len(kids) == e.nodes[i].arity
            assert e.subtree_end(kids[-1]) == e.subtree_end(i)
    assert e.depth == max(e.depth_of(i) for i in range(e.size)) + 1


def test_immutable():
    e = parse("sin(x)")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        e.nodes = ()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        e.nodes[0].name = "cos"
    assert isinstance(e.nodes, tuple)
    assert isinstance(Expr([Node.op("neg", 1), Node(VAR, "x")]).nodes, tuple)


def test_malformed_arrays_are_refused():
    with pytest.raises(ValueError):
        Expr(())
    with pytest.raises(ValueError):
        Expr((Node.op("add", 2), Node(VAR, "x")))
    with pytest.raises(ValueError):
        Expr((Node(VAR, "x"), Node(VAR, "x")))
    with pytest.raises(ValueError):
        Expr((Node("bogus"),))


def test_equality_and_hashing():
    a, b = parse("sin(x) + 1.0"), Expr.apply("add", Expr.apply("sin", Expr.x()), Expr.constant(1.0))
    assert a == b and hash(a) == hash(b)
    assert len({a, b, parse("1.0 + sin(x)")}) == 2
    assert parse("x * 0.5") != parse("x * 0.25")
    assert parse("param(1.0)") != parse("1.0")


@given(exprs(GAAF, max_depth=5, params=True))
@settings(max_examples=100, deadline=None)
def test_pickle_round_trip(e):
    back = pickle.loads(pickle.dumps(e))
    assert back == e and hash(back) == hash(e)
    assert back.depth == e.depth and back.subtree_end(0) == e.size
    assert back.structural_hash == e.structural_hash


def test_structural_hash_is_stable():
    # pinned: blake2b of the text, identical across processes and machines
    assert parse("sin(x) + x").structural_hash == "5543f9b7da6d2114"
    assert parse("sin(x) + x").structural_hash != parse("x + sin(x)").structural_hash
    assert len(Expr.x().structural_hash) == 16
