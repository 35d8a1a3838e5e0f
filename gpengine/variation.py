"""Variation: subtree crossover and six mutations, each making one new tree.

Every operator takes the numpy Generator first, never edits its input (an
`Expr` is immutable) and returns one child. Size and depth limits are
enforced inside the operators, not by a later filter: an operator draws its
random choices again (up to `TRIES` times) until the child fits `Limits` and
differs from the parent, and otherwise returns the parent unchanged. So a
search never sees an oversize tree and never wastes an evaluation on one.

Operators are found by name in `MUTATIONS` (filled explicitly by
`default_mutations`); `vary` picks crossover or a weighted mutation. Unknown
names raise `ConfigError` listing the known ones, at configuration time.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from typing import TYPE_CHECKING, Callable, Mapping, Sequence, TypeVar

import attrs
import numpy as np

from gpengine.errors import ConfigError
from gpengine.expr import CONST, OP, PARAM, VAR, X, Expr, Node
from gpengine.init import grow, random_constant, random_terminal, round_sig
from gpengine.mutation_weights import MutationWeights

if TYPE_CHECKING:
    from primitives.registry import PrimitiveSet

#: fresh random draws an operator makes before giving the parent back unchanged
TRIES = 10
#: Koza's bias: crossover points are internal nodes with this probability
P_INTERNAL = 0.9
CROSSOVER = "crossover"
T = TypeVar("T")

Mutation = Callable[[np.random.Generator, Expr, "PrimitiveSet", "Limits"], Expr]


def _positive(_inst, attribute, value) -> None:
    if value < 1:
        raise ConfigError(f"{attribute.name} must be at least 1, got {value}")


@attrs.frozen
class Limits:
    """Largest tree a variation operator may return; depth counts nodes (a lone terminal has depth 1)."""

    max_depth: int = attrs.field(converter=int, validator=_positive)
    max_size: int = attrs.field(converter=int, validator=_positive)

    def admits(self, expr: Expr) -> bool:
        return expr.depth <= self.max_depth and expr.size <= self.max_size


# -- choosing nodes ----------------------------------------------------------------------


def _choose(rng: np.random.Generator, items: Sequence[T]) -> T:
    return items[int(rng.integers(len(items)))]


def _pick_biased(rng: np.random.Generator, expr: Expr, candidates: Sequence[int]) -> int:
    """Koza 90/10: an internal node with probability P_INTERNAL when there is one, else a terminal."""
    internal = [i for i in candidates if expr.nodes[i].arity > 0]
    leaves = [i for i in candidates if expr.nodes[i].arity == 0]
    return _pick_split(rng, internal, leaves)


def _pick_split(rng: np.random.Generator, internal: Sequence[int], leaves: Sequence[int]) -> int:
    if internal and (not leaves or rng.random() < P_INTERNAL):
        return _choose(rng, internal)
    return _choose(rng, leaves)


def _subtree_size(expr: Expr, i: int) -> int:
    return expr.subtree_end(i) - i


# -- crossover ---------------------------------------------------------------------------


def crossover(rng: np.random.Generator, a: Expr, b: Expr, limits: Limits) -> Expr:
    """`a` with one subtree replaced by a subtree of `b` (one child; points chosen Koza 90/10).

    The root of `a` is never the point (unless `a` is a lone terminal), so
    the child keeps material from both parents; the subtree of `b` is drawn
    among those that keep the child within `limits`.
    """
    points = list(range(1, a.size)) or [0]
    a_internal = [i for i in points if a.nodes[i].arity > 0]
    a_leaves = [i for i in points if a.nodes[i].arity == 0]
    b_ends = [b.subtree_end(j) for j in range(b.size)]
    b_depths = [b.subtree_depth(j) for j in range(b.size)]
    for _ in range(TRIES):
        i = _pick_split(rng, a_internal, a_leaves)
        room_size = limits.max_size - (a.size - _subtree_size(a, i))
        room_depth = limits.max_depth - a.depth_of(i)
        donors = [j for j in range(b.size) if b_ends[j] - j <= room_size and b_depths[j] <= room_depth]
        if not donors:
            continue
        j = _pick_biased(rng, b, donors)
        child = Expr(a.nodes[:i] + b.nodes[j : b_ends[j]] + a.nodes[a.subtree_end(i) :])
        if child != a and limits.admits(child):
            return child
    return a


# -- mutations ---------------------------------------------------------------------------


def _other_terminal(rng: np.random.Generator, pset: "PrimitiveSet", node: Node) -> Node | None:
    """A terminal of another kind, or a fresh constant; None when the set offers nothing else."""
    kinds = [k for k in (VAR, CONST, PARAM) if k != node.kind]
    kinds = [k for k in kinds if k != CONST or pset.constant_range is not None]
    kinds = [k for k in kinds if k != PARAM or pset.param_slots]
    if pset.constant_range is not None and node.kind == CONST:
        kinds.append(CONST)
    if not kinds:
        return None
    kind = _choose(rng, kinds)
    if kind == VAR:
        return X
    if kind == PARAM:
        return Node.param(1.0)
    return random_constant(rng, pset)


def mutate_point(rng: np.random.Generator, expr: Expr, pset: "PrimitiveSet", limits: Limits) -> Expr:
    """One node replaced by another of the same arity; a terminal by another terminal (shape kept)."""
    for _ in range(TRIES):
        i = int(rng.integers(expr.size))
        node = expr.nodes[i]
        if node.kind == OP:
            others = [p for p in pset.with_arity(node.arity) if p.name != node.name]
            if not others:
                continue
            p = others[int(rng.integers(len(others)))]
            new = Node.op(p.name, p.arity)
        else:
            new = _other_terminal(rng, pset, node)
        if new is None or new == node:
            continue
        child = expr.with_node(i, new)
        if limits.admits(child):
            return child
    return expr


def mutate_subtree(
    rng: np.random.Generator,
    expr: Expr,
    pset: "PrimitiveSet",
    limits: Limits,
    *,
    max_new_depth: int = 4,
    p_const: float = 0.2,
) -> Expr:
    """A random subtree replaced by a fresh `grow` tree of depth at most `max_new_depth`."""
    for _ in range(TRIES):
        i = int(rng.integers(expr.size))
        room_depth = min(max_new_depth, limits.max_depth - expr.depth_of(i))
        room_size = limits.max_size - (expr.size - _subtree_size(expr, i))
        if room_depth < 1 or room_size < 1:
            continue
        new = grow(rng, pset, room_depth, 1, p_const)
        child = expr.replace(i, new)
        if new.size <= room_size and child != expr and limits.admits(child):
            return child
    return expr


def mutate_hoist(rng: np.random.Generator, expr: Expr, pset: "PrimitiveSet", limits: Limits) -> Expr:
    """A random subtree replaced by one of its own proper subtrees: always smaller (anti-bloat)."""
    internal = [i for i, n in enumerate(expr.nodes) if n.arity > 0]
    for _ in range(TRIES if internal else 0):
        i = _choose(rng, internal)
        j = int(rng.integers(i + 1, expr.subtree_end(i)))
        child = expr.replace(i, expr.subtree(j))
        if child != expr and limits.admits(child):
            return child
    return expr


def mutate_shrink(
    rng: np.random.Generator, expr: Expr, pset: "PrimitiveSet", limits: Limits, *, p_const: float = 0.2
) -> Expr:
    """A random internal subtree replaced by a random terminal."""
    internal = [i for i, n in enumerate(expr.nodes) if n.arity > 0]
    for _ in range(TRIES if internal else 0):
        i = _choose(rng, internal)
        child = expr.replace(i, Expr((random_terminal(rng, pset, p_const),)))
        if limits.admits(child):
            return child
    return expr


def mutate_constant(
    rng: np.random.Generator,
    expr: Expr,
    pset: "PrimitiveSet",
    limits: Limits,
    *,
    rel_scale: float = 0.1,
    min_scale: float = 0.1,
) -> Expr:
    """One constant or param-slot initial value v moved by N(0, rel_scale * max(|v|, min_scale)).

    Relative steps keep the search local at every magnitude; `min_scale`
    lets a value at or near zero move at all. The result is rounded to 4
    significant digits, like fresh constants. No constants: `expr` unchanged.
    """
    slots = [i for i, n in enumerate(expr.nodes) if n.kind in (CONST, PARAM)]
    for _ in range(TRIES if slots else 0):
        i = _choose(rng, slots)
        node = expr.nodes[i]
        sigma = rel_scale * max(abs(node.value), min_scale)
        value = round_sig(node.value + rng.normal(0.0, sigma))
        if value == node.value or not np.isfinite(value):
            continue
        new = Node.const(value) if node.kind == CONST else Node.param(value)
        return expr.with_node(i, new)
    return expr


def mutate_snap(rng: np.random.Generator, expr: Expr, pset: "PrimitiveSet", limits: Limits) -> Expr:
    """One constant that is not a whole number rounded to the nearest one.

    Constant perturbation walks a float towards 1.0 in ever smaller relative
    steps and rarely lands on it; a formula that needs an exact small integer
    (most do) gets it in one move. Param slots are left alone: training sets them.
    """
    slots = _fractional_constants(expr)
    if not slots:
        return expr
    i = _choose(rng, slots)
    new = Node.const(float(round(expr.nodes[i].value)) + 0.0)
    return expr.with_node(i, new)


def _fractional_constants(expr: Expr) -> list[int]:
    """Indices of the constants that are not whole numbers: what `mutate_snap` can change."""
    return [i for i, n in enumerate(expr.nodes) if n.kind == CONST and n.value != round(n.value)]


# -- registry and dispatch ---------------------------------------------------------------


def default_mutations() -> dict[str, Mutation]:
    """The built-in mutations by their `Individual.operator` names."""
    return {
        "mutate-point": mutate_point,
        "mutate-subtree": mutate_subtree,
        "mutate-hoist": mutate_hoist,
        "mutate-shrink": mutate_shrink,
        "mutate-constant": mutate_constant,
        "mutate-snap": mutate_snap,
    }


MUTATIONS: dict[str, Mutation] = default_mutations()
OPERATOR_NAMES: tuple[str, ...] = (CROSSOVER, *MUTATIONS)


def get_mutation(name: str, mutations: Mapping[str, Mutation] | None = None) -> Mutation:
    table = MUTATIONS if mutations is None else mutations
    if name not in table:
        raise ConfigError(f"unknown mutation {name!r} (known: {', '.join(table)})")
    return table[name]


def _applicable(expr: Expr, weights: dict[str, float]) -> dict[str, float]:
    """Weights with the mutations that cannot change `expr` set to zero (no wasted children)."""
    out = dict(weights)
    if expr.size == 1:
        out["mutate-hoist"] = out["mutate-shrink"] = 0.0
    if not any(n.kind in (CONST, PARAM) for n in expr.nodes):
        out["mutate-constant"] = 0.0
    if not _fractional_constants(expr):
        out["mutate-snap"] = 0.0
    return out


def vary(
    rng: np.random.Generator,
    parents: Sequence[Expr],
    pset: "PrimitiveSet",
    limits: Limits,
    p_crossover: float,
    weights: MutationWeights | None = None,
    mutations: Mapping[str, Mutation] | None = None,
) -> tuple[Expr, str, tuple[int, ...]]:
    """One child: (child, operator name, indices into `parents` of the parents used).

    With probability `p_crossover` (and at least two parents) the child is
    `crossover(parents[0], parents[1])`; otherwise, or when crossover could
    not make a new tree within the limits, `parents[0]` gets one mutation
    drawn by `weights` among those that can change it. `mutations` replaces
    the registry (e.g. to pass `functools.partial(mutate_constant, rel_scale=0.3)`);
    its keys must match the weights' names.
    """
    if not parents:
        raise ValueError("vary needs at least one parent")
    if not 0.0 <= p_crossover <= 1.0:
        raise ConfigError(f"p_crossover must be in [0, 1], got {p_crossover}")
    weights = weights or MutationWeights()
    table = MUTATIONS if mutations is None else mutations
    first = parents[0]
    if len(parents) >= 2 and rng.random() < p_crossover:
        child = crossover(rng, first, parents[1], limits)
        if child != first:
            return child, CROSSOVER, (0, 1)
    w = _applicable(first, _weights_by_name(weights))
    names = [n for n, v in w.items() if v > 0]
    if not names:
        return first, "mutate-point", (0,)
    # one uniform draw against the running sum: rng.choice(p=...) costs more than the mutation
    cumulative = list(itertools.accumulate(w[n] for n in names))
    pick = min(bisect.bisect_right(cumulative, rng.random() * cumulative[-1]), len(names) - 1)
    name = names[pick]
    return get_mutation(name, table)(rng, first, pset, limits), name, (0,)


@functools.lru_cache(maxsize=64)
def _weights_by_name(weights: MutationWeights) -> dict[str, float]:
    return weights.as_dict()
