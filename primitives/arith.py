"""Arithmetic set for symbolic regression: + - * protected-/ neg sin cos exp protected-log.

Protection follows gplearn: division by |b| <= 0.001 gives 1, the log of
|a| <= 0.001 gives 0, so no candidate produces inf or NaN from those two.
`exp` is left unprotected: an overflow is a genuinely bad candidate and the
evaluator scores non-finite output as the worst fitness.
"""

from __future__ import annotations

import numpy as np

from primitives.registry import Primitive, PrimitiveSet

PROTECT = 1e-3


def _np_pdiv(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(b) > PROTECT, np.divide(a, np.where(np.abs(b) > PROTECT, b, 1.0)), 1.0)


def _t_pdiv(t, a, b):
    safe = b.abs() > PROTECT
    return t.where(safe, a / t.where(safe, b, t.ones_like(b)), t.ones_like(a * b))


def _np_plog(a):
    absa = np.abs(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(absa > PROTECT, np.log(np.where(absa > PROTECT, absa, 1.0)), 0.0)


def _t_plog(t, a):
    absa = a.abs()
    safe = absa > PROTECT
    return t.where(safe, t.log(t.where(safe, absa, t.ones_like(absa))), t.zeros_like(a))


ARITH = [
    Primitive("add", 2, np.add, lambda t, a, b: a + b, commutative=True, doc="a+b"),
    Primitive("sub", 2, np.subtract, lambda t, a, b: a - b, doc="a-b"),
    Primitive("mul", 2, np.multiply, lambda t, a, b: a * b, commutative=True, doc="a*b"),
    Primitive("div", 2, _np_pdiv, _t_pdiv, doc="a/b, 1 where |b|<=0.001"),
    Primitive("neg", 1, np.negative, lambda t, a: -a, doc="-a"),
    Primitive("sin", 1, np.sin, lambda t, a: t.sin(a), doc="sin(a)"),
    Primitive("cos", 1, np.cos, lambda t, a: t.cos(a), doc="cos(a)"),
    Primitive("exp", 1, np.exp, lambda t, a: t.exp(a), doc="exp(a)"),
    Primitive("log", 1, _np_plog, _t_plog, doc="log|a|, 0 where |a|<=0.001"),
]


def _np_pow(a, b):
    with np.errstate(all="ignore"):
        return np.power(a, b)


POW = Primitive("pow", 2, _np_pow, lambda t, a, b: t.pow(a, b), doc="a**b (unprotected; for target formulas)")


def arith_set() -> PrimitiveSet:
    return PrimitiveSet(
        "arith",
        ARITH,
        description="+ - * protected-/ neg sin cos exp protected-log, for symbolic regression",
        constant_range=(-1.0, 1.0),
        integer_constants=0.5,  # half of them -1, 0 or 1 (BENCHMARKS.md, symreg vs DEAP)
    )
