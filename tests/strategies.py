"""Hypothesis strategies for random expressions over a primitive set.

`exprs(pset)` draws valid trees: operators by arity from the set, the input
`x`, finite constants (negative ones, 0.0 and -0.0, tiny and huge ones
included, since those are where printing and folding go wrong) and, when the
set allows them, learnable parameter slots.
"""

from __future__ import annotations

from hypothesis import strategies as st

from gpengine.expr import OP, Expr, Node
from primitives.registry import PrimitiveSet

NICE = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, 1e-8, -1e-3]


def constants(max_magnitude: float | None = None) -> st.SearchStrategy[float]:
    """Finite floats: a few special values often, anything finite sometimes."""
    wide = st.floats(
        allow_nan=False,
        allow_infinity=False,
        min_value=None if max_magnitude is None else -max_magnitude,
        max_value=max_magnitude,
    )
    return st.one_of(st.sampled_from(NICE), wide)


def exprs(
    pset: PrimitiveSet,
    max_depth: int = 5,
    params: bool | None = None,
    max_magnitude: float | None = None,
) -> st.SearchStrategy[Expr]:
    """Random valid expressions over `pset`, at most `max_depth` nodes deep.

    `params`: whether free parameter slots may appear (default: the set's
    `param_slots`). `max_magnitude` bounds the constants (default: any finite).
    """
    if params is None:
        params = pset.param_slots
    ops = sorted(pset, key=lambda p: p.name)
    terminals = [st.just(Expr.x()), st.just(Expr.x()), constants(max_magnitude).map(Expr.constant)]
    if params:
        terminals.append(constants(max_magnitude).map(lambda v: Expr((Node.param(v),))))
    terminal = st.one_of(*terminals)

    @st.composite
    def tree(draw, depth: int) -> Expr:
        if depth <= 1 or not ops or draw(st.integers(0, 3)) == 0:
            return draw(terminal)
        prim = draw(st.sampled_from(ops))
        return Expr.apply(prim.name, *[draw(tree(depth - 1)) for _ in range(prim.arity)])

    return tree(max_depth)


def commutative_variant(draw, e: Expr, pset: PrimitiveSet) -> Expr:
    """`e` with the arguments of some commutative nodes swapped (inside `st.data()` or `@composite`)."""
    for i in reversed(range(e.size)):  # deepest first: indices before i stay valid
        node = e.nodes[i]
        if node.kind == OP and pset[node.name].commutative and draw(st.booleans()):
            e = e.replace(i, Expr.apply(node.name, *reversed(e.subtree(i).args())))
    return e
