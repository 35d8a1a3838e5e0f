"""Evaluate an expression with the numpy forms of its primitives.

Used by the core for constant folding, behaviour fingerprints and the
pre-screen, and by cheap evaluators such as `symreg`. The prefix array is
walked backwards with a value stack, so there is no recursion and no Python
call per tree level beyond one per node.

Learnable parameters are numbered in prefix order: each operator's own
parameters in the order its `ParamSpec`s list them, and each `param` slot.
"""

from __future__ import annotations

from typing import Sequence

import attrs
import numpy as np

from gpengine.expr import CONST, OP, PARAM, VAR, Expr
from primitives.registry import PrimitiveSet


@attrs.frozen
class ParamSite:
    node: int  # index of the node that owns it
    name: str  # "s", "b", "beta" for operators; "param" for a slot
    init: float


def param_sites(expr: Expr, pset: PrimitiveSet) -> list[ParamSite]:
    sites = []
    for i, node in enumerate(expr.nodes):
        if node.kind == OP:
            for spec in pset[node.name].params:
                sites.append(ParamSite(i, spec.name, spec.init))
        elif node.kind == PARAM:
            sites.append(ParamSite(i, "param", node.value))
    return sites


def param_rows(expr: Expr, pset: PrimitiveSet) -> dict[int, list[int]]:
    """Node index -> the rows (positions in `param_sites` order) of its learnable parameters."""
    rows: dict[int, list[int]] = {i: [] for i in range(len(expr.nodes))}
    for row, site in enumerate(param_sites(expr, pset)):
        rows[site.node].append(row)
    return rows


def evaluate(
    expr: Expr,
    pset: PrimitiveSet,
    x: np.ndarray | float,
    params: Sequence[float] | None = None,
) -> np.ndarray:
    """Values of `expr` at `x` (float64). `params` defaults to each site's initial value."""
    x = np.asarray(x, dtype=np.float64)
    defaults = params is None  # each site's initial value, read where it is met (no separate pass)
    # parameters are consumed in prefix order, but we walk backwards: index from the end
    p_end = 0 if defaults else len(params)
    stack: list[np.ndarray] = []
    prims = pset.primitives
    with np.errstate(all="ignore"):
        for node in reversed(expr.nodes):
            kind = node.kind
            if kind == VAR:
                stack.append(x)
            elif kind == CONST:
                stack.append(np.full_like(x, node.value))
            elif kind == PARAM:
                if defaults:
                    stack.append(np.full_like(x, node.value))
                    continue
                p_end -= 1
                stack.append(np.full_like(x, params[p_end]))
            else:  # OP
                prim = prims.get(node.name) or pset[node.name]  # pset[] raises the helpful error
                if node.arity == 1 and not prim.params:  # the common cases, without building a list
                    stack[-1] = np.asarray(prim.numpy(stack[-1]), dtype=np.float64)
                    continue
                if node.arity == 2 and not prim.params:
                    a = stack.pop()
                    stack[-1] = np.asarray(prim.numpy(a, stack[-1]), dtype=np.float64)
                    continue
                args = [stack.pop() for _ in range(node.arity)]
                if prim.params:
                    if defaults:
                        args.extend(spec.init for spec in prim.params)
                    else:
                        p_end -= prim.n_params
                        args.extend(params[p_end : p_end + prim.n_params])
                stack.append(np.asarray(prim.numpy(*args), dtype=np.float64))
    if p_end != 0:
        raise ValueError(f"{len(params)} parameter values given, expression has {len(params) - p_end}")
    out = stack[0]
    if out.shape != x.shape:
        out = np.broadcast_to(out, x.shape).copy()
    return out
