"""Compile an `Expr` into a torch module with its own learnable parameters.

`ExprActivation(expr, pset, channels)` turns the flat prefix array into a
straight-line program once, at construction: a list of instructions
``(function, argument registers, parameter rows)`` in evaluation order. The
forward pass is then one flat loop over that list, with no tree walking and no
name lookups.

Learnable parameters (each operator's `ParamSpec`s and each ``param`` slot)
follow `gpengine.numeric.param_sites` order and live in one tensor of shape
``(n_params, channels)``: one value per channel of the layer, viewed as
``(1, C, 1, 1)`` for NCHW inputs (or ``(1, C)`` for 2-d inputs), initialised
to the spec's init or the slot's value. Every layer builds its own module, so
every layer learns its own parameters (GAAF's per-layer scale, shift,
constant and blend).

Numeric constants live in a (non-persistent) buffer, not in the code: under
torch.compile a buffer is an input of the captured graph, so expressions that
differ only in their constants (`x + 0.37` and `x - 0.25`: constant mutation,
a user's sweep) give the same graph, and the second one is answered by
inductor's on-disk cache: about 9 s instead of 47 on a 2-core CPU
(tests/bench/bench_compile_reuse.py).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from gpengine.expr import CONST, PARAM, VAR, Expr
from gpengine.numeric import param_rows, param_sites
from primitives.registry import PrimitiveSet

# operand sources of an instruction
_REG, _CONST, _PARAM = 0, 1, 2


class ExprActivation(nn.Module):
    """The expression as an elementwise activation with per-channel parameters."""

    def __init__(self, expr: Expr, pset: PrimitiveSet, channels: int) -> None:
        super().__init__()
        self.expr = expr
        self.channels = int(channels)
        sites = param_sites(expr, pset)
        init = torch.tensor([s.init for s in sites], dtype=torch.float32)
        self.n_params = len(sites)
        self.weight = nn.Parameter(init[:, None].repeat(1, self.channels)) if sites else None
        self._program, self._out, consts = _compile(expr, pset)
        values = torch.tensor(consts, dtype=torch.float32)  # float32: every device has it (MPS has no float64)
        if not torch.isfinite(values).all():  # it would silently become inf
            bad = next(c for c, v in zip(consts, values.tolist()) if not math.isfinite(v))
            raise ValueError(f"constant {bad!r} in {expr} does not fit in float32")
        self.register_buffer("consts", values, persistent=False)
        self._depends_on_x = any(n.kind == VAR for n in expr.nodes)

    def extra_repr(self) -> str:
        return f"{self.expr}, channels={self.channels}, params={self.n_params}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        params = None
        if self.weight is not None:
            shape = (self.n_params, 1, self.channels) + (1,) * (x.dim() - 2)
            params = self.weight.to(x.dtype).view(shape)
        consts = self.consts.to(x.dtype)
        regs: list[Any] = [x]
        for fn, operands in self._program:
            regs.append(fn(torch, *[_operand(op, regs, params, consts) for op in operands]))
        out = _operand(self._out, regs, params, consts)
        if not self._depends_on_x or out.shape != x.shape:
            out = out + torch.zeros_like(x)  # broadcast, keeping the graph to the parameters
        return out


def _operand(operand: tuple[int, Any], regs: list[Any], params: Any, consts: torch.Tensor) -> Any:
    src, ref = operand
    if src == _REG:
        return regs[ref]
    if src == _PARAM:
        return params[ref]
    return consts[ref]


def _compile(expr: Expr, pset: PrimitiveSet) -> tuple[list[tuple[Callable[..., Any], tuple]], tuple[int, Any], list[float]]:
    """Straight-line program of `expr`: register 0 holds x, instruction k writes register k+1.

    Operands are ``(_REG, register)``, ``(_CONST, index)`` (into the returned
    constants) or ``(_PARAM, row)``; the operator's own parameters are appended
    after its tree arguments, as the primitive's torch form expects. Returns the
    program, the output operand and the constants' values.
    """
    rows = param_rows(expr, pset)
    const_nodes = [i for i, node in enumerate(expr.nodes) if node.kind == CONST]  # constants in prefix order
    consts = [float(expr.nodes[i].value) for i in const_nodes]
    const_index = {i: k for k, i in enumerate(const_nodes)}
    program: list[tuple[Callable[..., Any], tuple]] = []
    stack: list[tuple[int, Any]] = []  # operands of completed subtrees, last on top
    for i in range(len(expr.nodes) - 1, -1, -1):
        node = expr.nodes[i]
        if node.kind == VAR:
            stack.append((_REG, 0))
        elif node.kind == CONST:
            stack.append((_CONST, const_index[i]))
        elif node.kind == PARAM:
            stack.append((_PARAM, rows[i][0]))
        else:
            prim = pset[node.name]
            args = tuple(stack.pop() for _ in range(node.arity))
            args += tuple((_PARAM, r) for r in rows[i])
            program.append((prim.torch, args))
            stack.append((_REG, len(program)))
    (out,) = stack
    return program, out, consts

