"""Random trees for the first generation, and GAAF's fixed-shape templates.

Tree GP starts from Koza's ramped half-and-half: half the trees `full` (every
leaf at the same depth), half `grow` (leaves anywhere), over a ramp of depths,
so the first population spans many shapes and sizes. GAAF instead searches a
fixed shape with one primitive per slot (a "gene"); `gaaf_3gene`/`gaaf_6gene`
build those shapes as ordinary trees, and `from_genes`/`to_genes` map between a
gene tuple and the tree, so a GAAF-style genetic algorithm can run on the same
Expr genome and share the cache, canonical form and lineage with tree GP.

Depth counts nodes, as `Expr.depth` does: a lone terminal has depth 1.
Every function takes the numpy Generator first and returns new Exprs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Collection

import numpy as np

from gpengine.errors import ConfigError, did_you_mean
from gpengine.expr import OP, VAR, X, Expr, Node

if TYPE_CHECKING:
    from primitives.registry import PrimitiveSet

GROW, FULL = "init-grow", "init-full"
#: gene slots of GAAF's two template forms, in the order of the gene tuple
GENES_3 = ("U1", "U2", "B")  # B(U1(x), U2(x))
GENES_6 = ("U1", "U2", "B1", "U3", "U4", "B2")  # B2(U3(B1(U1(x), U2(x))), U4(x))
#: how many times ramped half-and-half redraws a tree that is already in the population
_DEDUP_TRIES = 10
#: how many times a tree the caller excludes is redrawn (drawing one takes microseconds; a
#: shallow slot draws an excluded tree often: depth 2 is mostly a primitive applied to x)
EXCLUDE_TRIES = 1000


def round_sig(value: float, digits: int = 4) -> float:
    """`value` rounded to `digits` significant digits, so a constant prints short (never -0.0)."""
    return float(f"{float(value):.{digits}g}") + 0.0


def random_terminal(rng: np.random.Generator, pset: "PrimitiveSet", p_const: float = 0.2) -> Node:
    """The input x, or with probability `p_const` a constant-like terminal.

    Constant-like terminals are an ephemeral random constant (drawn uniformly
    from `pset.constant_range`, when the set has one, or with probability
    `pset.integer_constants` an integer of that range) and a learnable
    parameter slot `param(1.0)` (when `pset.param_slots`); with both allowed,
    each is equally likely. A set with neither always gives x.
    """
    kinds = []
    if pset.constant_range is not None:
        kinds.append("const")
    if pset.param_slots:
        kinds.append("param")
    if not kinds or rng.random() >= p_const:
        return X
    kind = kinds[int(rng.integers(len(kinds)))] if len(kinds) > 1 else kinds[0]
    if kind == "param":
        return Node.param(1.0)
    return random_constant(rng, pset)


def random_constant(rng: np.random.Generator, pset: "PrimitiveSet") -> Node:
    """A fresh ephemeral constant of a set with a `constant_range`: an integer of the range with
    probability `pset.integer_constants`, else uniform, rounded to 4 significant digits."""
    lo, hi = pset.constant_range
    if pset.integer_constants and rng.random() < pset.integer_constants and math.ceil(lo) <= math.floor(hi):
        return Node.const(float(rng.integers(math.ceil(lo), math.floor(hi) + 1)) + 0.0)
    return Node.const(round_sig(rng.uniform(lo, hi)))


def _n_terminal_kinds(pset: "PrimitiveSet") -> int:
    return 1 + (pset.constant_range is not None) + bool(pset.param_slots)


def smallest_size(pset: "PrimitiveSet", depth: int) -> int:
    """Nodes of the smallest tree whose every leaf lies at depth `depth` or deeper: each internal
    node has the set's smallest arity (a chain with unary primitives, 2**depth - 1 with binary only)."""
    return _smallest(_min_arity(pset), depth)


def _min_arity(pset: "PrimitiveSet") -> int:
    return min((p.arity for p in pset if p.arity > 0), default=1)


def _smallest(arity: int, depth: int) -> int:
    return depth if arity == 1 else (arity**depth - 1) // (arity - 1)


def _build(rng, pset, max_depth: int, min_depth: int, p_const: float, full_tree: bool,
           max_size: int | None = None) -> Expr:
    """Prefix-order generation: each node at level L chooses, then its children follow.

    With `max_size`, every pending node holds a reservation of the smallest subtree it must still
    grow (`smallest_size` down to its required depth); a primitive is drawn only among those whose
    children fit beside the reservations, so the tree never passes `max_size`. The draws are the
    unbounded ones wherever every primitive fits, so a generous limit changes no tree.
    """
    if not 1 <= min_depth <= max_depth:
        raise ValueError(f"need 1 <= min_depth <= max_depth, got min_depth={min_depth}, max_depth={max_depth}")
    if max_depth > 1 and len(pset) == 0:
        raise ValueError(f"primitive set {pset.name!r} has no primitives to build a tree deeper than 1")

    arity = _min_arity(pset)  # once: need() runs for every node drawn

    def need(level: int) -> int:  # smallest subtree a node at `level` must grow
        return _smallest(arity, (max_depth if full_tree else max(min_depth, 1)) - level) if (
            full_tree or level + 1 < min_depth) else 1

    if max_size is not None and need(0) > max_size:
        raise ValueError(f"no tree of depth {min_depth if not full_tree else max_depth} fits in {max_size} nodes")
    # Grow picks uniformly over all symbols (Koza; DEAP and gplearn do the same),
    # so a node becomes a terminal with probability n_terminals / n_symbols.
    n_term = _n_terminal_kinds(pset)
    p_terminal = n_term / (n_term + len(pset))
    prims = list(pset)
    nodes: list[Node] = []
    stack = [0]  # levels of the nodes still to generate, next on top
    reserved = need(0)  # nodes the pending ones must still produce, at the least
    while stack:
        level = stack.pop()
        reserved -= need(level)
        last_level = level + 1 >= max_depth
        must_branch = level + 1 < min_depth
        if last_level or (not must_branch and not full_tree and rng.random() < p_terminal):
            nodes.append(random_terminal(rng, pset, p_const))
            continue
        choices = prims
        if max_size is not None:
            room = max_size - len(nodes) - 1 - reserved
            choices = [p for p in prims if p.arity * need(level + 1) <= room]
        if not choices:  # only reachable for an optional branch: grow stops here instead
            nodes.append(random_terminal(rng, pset, p_const))
            continue
        p = choices[int(rng.integers(len(choices)))]
        nodes.append(Node.op(p.name, p.arity))
        stack.extend([level + 1] * p.arity)
        reserved += p.arity * need(level + 1)
    return Expr(tuple(nodes))


def grow(
    rng: np.random.Generator, pset: "PrimitiveSet", max_depth: int, min_depth: int = 1, p_const: float = 0.2,
    max_size: int | None = None,
) -> Expr:
    """A tree whose every leaf lies between depth `min_depth` and `max_depth`, of at most `max_size` nodes."""
    return _build(rng, pset, max_depth, min_depth, p_const, full_tree=False, max_size=max_size)


def full(rng: np.random.Generator, pset: "PrimitiveSet", depth: int, p_const: float = 0.2,
         max_size: int | None = None) -> Expr:
    """A tree whose every leaf lies at exactly `depth` (unary primitives make it thin, not shallow),
    of at most `max_size` nodes (only thin primitives are drawn where wide ones would not fit)."""
    return _build(rng, pset, depth, depth, p_const, full_tree=True, max_size=max_size)


def other_than(draw: Callable[[], Expr], exclude: Collection[Expr]) -> Expr:
    """A tree from `draw` not in `exclude`, unless the set cannot make another."""
    for _ in range(EXCLUDE_TRIES):
        tree = draw()
        if tree not in exclude:
            break
    return tree


def ramped_plan(n: int, min_depth: int = 2, max_depth: int = 6) -> list[tuple[str, int]]:
    """(method, depth) of each of `n` ramped half-and-half trees: methods alternate, depths cycle.

    The method is an `Individual.operator` name ("init-grow" or "init-full"),
    so the search can record how each first-generation tree was made.
    """
    if not 1 <= min_depth <= max_depth:
        raise ValueError(f"need 1 <= min_depth <= max_depth, got {min_depth}, {max_depth}")
    depths = list(range(min_depth, max_depth + 1))
    return [(GROW if i % 2 == 0 else FULL, depths[(i // 2) % len(depths)]) for i in range(n)]


def ramped_half_and_half(
    rng: np.random.Generator,
    pset: "PrimitiveSet",
    n: int,
    min_depth: int = 2,
    max_depth: int = 6,
    p_const: float = 0.2,
    max_size: int | None = None,
    exclude: Collection[Expr] = (),
) -> list[Expr]:
    """`n` trees following `ramped_plan`, none over `max_size` nodes; a tree already drawn is
    redrawn a few times (Koza), one in `exclude` (proposed already) until it is another.

    Grow trees have depth in [min_depth, d] and full trees exactly d, where d
    is the slot's depth, so every tree's depth is in [min_depth, max_depth].
    Duplicates remain only when the set is too small to avoid them.
    """
    out: list[Expr] = []
    seen: set[Expr] = set()
    for method, depth in ramped_plan(n, min_depth, max_depth):
        for attempt in range(EXCLUDE_TRIES):
            if method == GROW:
                tree = grow(rng, pset, depth, min_depth, p_const, max_size)
            else:
                tree = full(rng, pset, depth, p_const, max_size)
            if tree not in exclude and (tree not in seen or attempt >= _DEDUP_TRIES - 1):
                break
        seen.add(tree)
        out.append(tree)
    return out


def check_limits(init: str, strategy: str, init_min_depth: int, init_max_depth: int, max_depth: int,
                 max_size: int, pset: "PrimitiveSet | None" = None) -> None:
    """ConfigError naming the keys when the first population cannot respect `max_depth` and
    `max_size`. Without `pset` the bound assumes unary primitives (the smallest trees any set
    builds); with it, the set's smallest arity (a binary-only set needs 2**d - 1 nodes at depth d)."""
    if strategy == "gaaf" or init in ("gaaf3", "gaaf6"):
        genes = 6 if init == "gaaf6" else 3
        size, depth = (9, 5) if genes == 6 else (5, 3)
        if size > max_size or depth > max_depth:
            raise ConfigError(f"a {genes}-gene GAAF tree has size {size} and depth {depth}: it needs max_size >= {size} "
                              f"and max_depth >= {depth} (got max_size={max_size}, max_depth={max_depth})")
        return
    if init_max_depth > max_depth:
        raise ConfigError(f"init_max_depth ({init_max_depth}) must not exceed max_depth ({max_depth})")
    # grow reaches down to init_min_depth at least; full and ramped's full half build every depth up to init_max_depth
    key, depth = ("init_min_depth", init_min_depth) if init == "grow" else ("init_max_depth", init_max_depth)
    smallest = depth if pset is None else smallest_size(pset, depth)
    if smallest > max_size:
        where = "" if pset is None else f" with primitive set {pset.name!r}"
        raise ConfigError(f"max_size ({max_size}) is below the smallest tree init {init!r} builds at {key} {depth}"
                          f"{where} ({smallest} nodes): raise max_size or lower {key}")


# -- GAAF templates ----------------------------------------------------------------------


def _pick(rng: np.random.Generator, pset: "PrimitiveSet", arity: int) -> str:
    prims = pset.with_arity(arity)
    if not prims:
        raise ValueError(f"primitive set {pset.name!r} has no primitives of arity {arity} for a GAAF template")
    return prims[int(rng.integers(len(prims)))].name


def gaaf_3gene(rng: np.random.Generator, pset: "PrimitiveSet") -> Expr:
    """B(U1(x), U2(x)) with random unary U and binary B from the set."""
    genes = tuple(_pick(rng, pset, 2 if slot.startswith("B") else 1) for slot in GENES_3)
    return from_genes(pset, genes)


def gaaf_6gene(rng: np.random.Generator, pset: "PrimitiveSet") -> Expr:
    """B2(U3(B1(U1(x), U2(x))), U4(x)) with random unary U and binary B from the set."""
    genes = tuple(_pick(rng, pset, 2 if slot.startswith("B") else 1) for slot in GENES_6)
    return from_genes(pset, genes)


def from_genes(pset: "PrimitiveSet", genes: tuple[str, ...]) -> Expr:
    """The tree of a GAAF gene tuple (slot order `GENES_3` or `GENES_6`); names checked against `pset`.

    GAAF's unary "x" is the primitive `ident` and its "0" is `zero`.
    """
    genes = tuple(genes)
    slots = {3: GENES_3, 6: GENES_6}.get(len(genes))
    if slots is None:
        raise ConfigError(f"a GAAF genome has 3 or 6 genes, got {len(genes)}: {genes!r}")
    for slot, name in zip(slots, genes):
        want = 2 if slot.startswith("B") else 1
        prim = pset.get(name)
        if prim is None:
            raise ConfigError(
                f"gene {slot}={name!r} is not in primitive set {pset.name!r}{did_you_mean(name, pset.names())} "
                f"(known: {', '.join(sorted(pset.names()))})"
            )
        if prim.arity != want:
            raise ConfigError(f"gene {slot}={name!r} must be {'binary' if want == 2 else 'unary'}, it has arity {prim.arity}")
    x = Expr.x()
    g = dict(zip(slots, genes))
    inner = Expr.apply(g["B"] if len(genes) == 3 else g["B1"], Expr.apply(g["U1"], x), Expr.apply(g["U2"], x))
    if len(genes) == 3:
        return inner
    return Expr.apply(g["B2"], Expr.apply(g["U3"], inner), Expr.apply(g["U4"], x))


def _unary_of_x(expr: Expr, i: int) -> str | None:
    node = expr.nodes[i]
    if node.kind == OP and node.arity == 1 and expr.nodes[i + 1].kind == VAR:
        return node.name
    return None


def _three(expr: Expr, i: int) -> tuple[str, str, str] | None:
    """(U1, U2, B) when the subtree at i is B(U1(x), U2(x))."""
    node = expr.nodes[i]
    if node.kind != OP or node.arity != 2:
        return None
    left, right = expr.children(i)
    u1, u2 = _unary_of_x(expr, left), _unary_of_x(expr, right)
    if u1 is None or u2 is None:
        return None
    return (u1, u2, node.name)


def to_genes(expr: Expr) -> tuple[str, ...] | None:
    """The gene tuple of a tree with a GAAF template shape, else None (the exact inverse of `from_genes`)."""
    if expr.size == 5:
        return _three(expr, 0)
    if expr.size == 9 and expr.root.kind == OP and expr.root.arity == 2:
        left, right = expr.children(0)
        u3 = expr.nodes[left]
        u4 = _unary_of_x(expr, right)
        if u3.kind != OP or u3.arity != 1 or u4 is None:
            return None
        inner = _three(expr, left + 1)
        if inner is None:
            return None
        return (inner[0], inner[1], inner[2], u3.name, u4, expr.root.name)
    return None
