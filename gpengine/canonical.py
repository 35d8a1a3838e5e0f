"""Canonical form: one spelling for expressions that are the same by rewriting.

Two individuals that differ only by argument order of a commutative operator,
by constant sub-expressions, or by trivial identities train the same network,
so the search should evaluate them once. `canonicalize` rewrites bottom-up:

1. fold: an operator whose arguments are all constants becomes one constant,
   computed with the primitive's numpy form in float64 on a one-element array,
   exactly as `numeric.evaluate` would compute it; only when the result is
   finite and the primitive owns no learnable parameters (those are trained);
2. identities: ``ident(a) -> a``, ``zero(a) -> 0.0``, ``add(a, 0) -> a``,
   ``add(0, a) -> a``, ``sub(a, 0) -> a``, ``mul(a, 1) -> a``, ``mul(1, a) -> a``,
   ``neg(neg(a)) -> a``. A rule applies by primitive name only when the set
   has that name *and* the set's numpy form satisfies the rule exactly on a
   probe of ordinary and special values (0, -0, inf, nan); so GAAF's
   ``div(a, 1) = a / (1 + 1e-8)`` is never treated as an identity, and a
   third-party set whose ``add`` means something else is left alone;
3. order: the two arguments of a commutative primitive are sorted by their
   canonical text, so ``add(x, sin(x))`` and ``add(sin(x), x)`` coincide; at
   each node this happens first, so folding sees one argument order
   (``max(0.0, -0.0)`` and ``max(-0.0, 0.0)`` return zeros of different sign).

Every rule preserves the function's float64 values exactly, with one IEEE
caveat: ``add(a, 0.0)`` turns an intermediate ``-0.0`` into ``+0.0``; the two
compare equal, and only a later unprotected ``pow(., negative)`` can tell them
apart (the sign of an infinity at that one point).

The rules depend only on a node and its already-canonical children, so the
result is a fixed point: canonicalising twice changes nothing.

A search canonicalises every proposal (and the fingerprint does it again), and
crossover keeps proposing trees it has seen, so canonical forms are memoised
per primitive set, by tree. A tree holding a ``-0.0`` bypasses the memo, since
``-0.0 == 0.0`` would let it share an entry with a tree that prints differently.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Callable, Sequence

import numpy as np

from gpengine.expr import CONST, OP, Expr, Node
from gpengine.expr_text import format_node
from gpengine.memo import SetMemo
from primitives.registry import Primitive, PrimitiveSet

Nodes = tuple[Node, ...]

# Probe for checking that an identity rule holds for a set's numpy form.
_PROBE = np.array(
    [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.141592653589793, 1e-300, -1e300, 7.25e12, np.inf, -np.inf, np.nan]
)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal where finite-or-infinite, NaN exactly where the other is NaN."""
    a = np.broadcast_to(np.asarray(a, dtype=np.float64), _PROBE.shape)
    b = np.broadcast_to(np.asarray(b, dtype=np.float64), _PROBE.shape)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    return bool(np.array_equal(nan_a, nan_b) and np.all(a[~nan_a] == b[~nan_b]))


def _check(fn: Callable, args: tuple, expected: np.ndarray) -> bool:
    try:
        with np.errstate(all="ignore"):
            return _same(fn(*args), expected)
    except Exception:  # a form that cannot take the probe is not an identity
        return False


@functools.cache
def _holds(rule: str, fn: Callable) -> bool:
    """Whether identity `rule` is exact for the numpy form `fn` (cached per callable)."""
    v, zero, one = _PROBE, np.zeros_like(_PROBE), np.ones_like(_PROBE)
    if rule == "ident":
        return _check(fn, (v,), v)
    if rule == "zero":
        return _check(fn, (v,), zero)
    if rule == "neg":  # neg(neg(a)) == a, and neg really negates
        return _check(fn, (v,), -v) and _check(lambda a: fn(fn(a)), (v,), v)
    if rule in ("add_left", "add_right", "sub_right"):
        args = (v, zero) if rule != "add_left" else (zero, v)
        return _check(fn, args, v)
    if rule in ("mul_left", "mul_right"):
        args = (v, one) if rule == "mul_right" else (one, v)
        return _check(fn, args, v)
    raise ValueError(f"unknown identity rule {rule!r}")


def _rule(pset: PrimitiveSet, name: str, rule: str) -> bool:
    prim = pset.get(name)
    return prim is not None and not prim.params and _holds(rule, prim.numpy)


def _const_value(nodes: Nodes) -> float | None:
    return nodes[0].value if len(nodes) == 1 and nodes[0].kind == CONST else None


def _fold(prim: Primitive, kids: list[Nodes]) -> Nodes | None:
    values = [_const_value(k) for k in kids]
    if prim.params or any(v is None for v in values):
        return None
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(prim.numpy(*[np.full(1, v, dtype=np.float64) for v in values]), dtype=np.float64)
    except Exception:  # leave anything the form cannot compute to evaluation time
        return None
    if out.size != 1 or not np.isfinite(out).all():
        return None
    return (Node.const(float(out.reshape(-1)[0])),)


def _identity(pset: PrimitiveSet, name: str, kids: list[Sub]) -> Sub | None:
    """The simplified subtree if an exact identity applies, else None."""
    if len(kids) == 1:
        (a,) = kids
        if name == "ident" and _rule(pset, name, "ident"):
            return a
        if name == "zero" and _rule(pset, name, "zero"):
            return _leaf(Node.const(0.0))
        head = a[0][0]
        if name == "neg" and head.kind == OP and head.name == "neg" and _rule(pset, name, "neg"):
            return a[3][0]
        return None
    if len(kids) == 2:
        a, b = kids
        va, vb = _const_value(a[0]), _const_value(b[0])
        if name == "add":
            if vb == 0.0 and _rule(pset, name, "add_right"):
                return a
            if va == 0.0 and _rule(pset, name, "add_left"):
                return b
        elif name == "sub":
            if vb == 0.0 and _rule(pset, name, "sub_right"):
                return a
        elif name == "mul":
            if vb == 1.0 and _rule(pset, name, "mul_right"):
                return a
            if va == 1.0 and _rule(pset, name, "mul_left"):
                return b
    return None


# -- canonical subtrees with their text ------------------------------------------------------
#
# Commutative arguments are sorted by their canonical text. Printing each argument
# again at every level cost more than all the rest of canonicalisation, so every
# canonical subtree carries its text, built bottom-up by the rules of
# `gpengine.expr_text.format_node` (same precedences and parentheses):
# Sub = (nodes, text, precedence, child Subs).

Sub = tuple


def _format(node: Node, kids: Sequence[Sub]) -> tuple[str, int]:
    """Text and precedence of `node` over children already printed (one level of `to_text`)."""
    return format_node(node, [(k[1], k[2], k[0][0].kind == CONST) for k in kids])


def _leaf(node: Node) -> Sub:
    text, prec = _format(node, ())
    return ((node,), text, prec, ())


def _simplify(pset: PrimitiveSet, op: Node, kids: list[Sub]) -> Sub:
    """One operator node over canonical children -> its canonical subtree."""
    prim = pset[op.name]
    if prim.commutative and len(kids) == 2 and kids[1][1] < kids[0][1]:
        # sort first: folding must see one argument order, since np.maximum(0.0, -0.0)
        # and np.maximum(-0.0, 0.0) differ in the sign of the zero they return
        kids = [kids[1], kids[0]]
    folded = _fold(prim, [k[0] for k in kids])
    if folded is not None:
        return _leaf(folded[0])
    simpler = _identity(pset, op.name, kids)
    if simpler is not None:
        return simpler
    nodes: tuple[Node, ...] = (op,)
    for k in kids:
        nodes += k[0]
    text, prec = _format(op, kids)
    return (nodes, text, prec, tuple(kids))


# -- memo --------------------------------------------------------------------------------------

_MEMO = SetMemo()  # results by tree, per primitive set
# Canonical subtrees by their node tuple, per set. A child of crossover or mutation
# differs from its parent along one path; every subtree off that path was
# canonicalised before, so a new tree costs its changed path, not its size.
_SUBTREES = SetMemo(limit=200_000)
_MAX_RECURSION = 200  # deeper trees take the iterative path


def _canonical_sub(pset: PrimitiveSet, expr: Expr, start: int, subs: dict) -> Sub:
    end = expr.subtree_end(start)
    key = expr.nodes[start:end]
    hit = subs.get(key)
    if hit is not None:
        return hit
    node = expr.nodes[start]
    if node.kind != OP:
        out = _leaf(node)
    else:
        kids = []
        c = start + 1
        for _ in range(node.arity):
            kids.append(_canonical_sub(pset, expr, c, subs))
            c = expr.subtree_end(c)
        out = _simplify(pset, node, kids)
    subs[key] = out
    return out


def _canonical_sub_iterative(pset: PrimitiveSet, expr: Expr) -> Sub:
    stack: list[Sub] = []
    for node in reversed(expr.nodes):
        if node.kind != OP:
            stack.append(_leaf(node))
            continue
        kids = [stack.pop() for _ in range(node.arity)]
        stack.append(_simplify(pset, node, kids))
    return stack[0]


def canonicalize(expr: Expr, pset: PrimitiveSet) -> Expr:
    """The canonical form of `expr` over `pset` (same values; idempotent)."""
    memo = _MEMO.for_set(pset)
    # -0.0 == 0.0: a tree holding -0.0 would share entries with its +0.0 twin, which prints apart
    cacheable = not expr.has_negative_zero
    if cacheable:
        hit = memo.get(expr)
        if hit is not None:
            return hit
    if cacheable and expr.depth <= _MAX_RECURSION:
        top = _canonical_sub(pset, expr, 0, _SUBTREES.for_set(pset))
    else:
        top = _canonical_sub_iterative(pset, expr)
    nodes, text = top[0], top[1]
    # nodes == expr.nodes holds for -0.0 against 0.0: with one in the tree, build anew, or the sorted
    # text would be set on the caller's tree, whose zeros stand in the other order
    canon = expr if nodes == expr.nodes and not expr.has_negative_zero else Expr(nodes)
    canon.set_text(text)  # printed bottom-up already: str(canon) and canonical_text cost nothing more
    if cacheable:
        memo[expr] = canon
        if canon is not expr and not canon.has_negative_zero:
            memo[canon] = canon  # a fixed point: the fingerprint canonicalises it again
    return canon


def canonical_text(expr: Expr, pset: PrimitiveSet) -> str:
    return str(canonicalize(expr, pset))


def canonical_hash(expr: Expr, pset: PrimitiveSet) -> str:
    """Stable hex digest (blake2b) of the canonical text: equal for equal canonical forms."""
    return hashlib.blake2b(canonical_text(expr, pset).encode(), digest_size=8).hexdigest()
