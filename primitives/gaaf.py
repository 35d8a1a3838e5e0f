"""GAAF's operator library: 22 unary and 11 binary operators.

Forms follow the GAAF paper and code (see shared/reference/GAAF.md): the
protected square root and log add 1e-8 inside, division adds 1e-8 to the
denominator, and four operators own learnable per-channel parameters
(`scale` s*x, `shift` x+b, `lconst` s, `blend` beta*a+(1-beta)*b).

`ident` and `zero` are GAAF's unary "x" and "0": a fixed-shape template needs
them to fill a gene; tree GP rarely does, and canonical form removes them.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from primitives.registry import ParamSpec, Primitive, PrimitiveSet

EPS = 1e-8


def _np_blend(a, b, beta):
    return beta * a + (1.0 - beta) * b


UNARY = [
    Primitive("ident", 1, lambda a: a, lambda t, a: a, doc="x"),
    Primitive("zero", 1, lambda a: np.zeros_like(a), lambda t, a: t.zeros_like(a), doc="0"),
    Primitive("square", 1, lambda a: a * a, lambda t, a: a * a, doc="x^2"),
    Primitive("cube", 1, lambda a: a * a * a, lambda t, a: a * a * a, doc="x^3"),
    Primitive(
        "ssqrt", 1,
        lambda a: np.sign(a) * np.sqrt(np.abs(a) + EPS),
        lambda t, a: t.sign(a) * t.sqrt(a.abs() + EPS),
        doc="sign(x)*sqrt(|x|+1e-8)",
    ),
    Primitive("log", 1, lambda a: np.log(np.abs(a) + EPS), lambda t, a: t.log(a.abs() + EPS), doc="log(|x|+1e-8)"),
    Primitive("sin", 1, np.sin, lambda t, a: t.sin(a), doc="sin(x)"),
    Primitive("cos", 1, np.cos, lambda t, a: t.cos(a), doc="cos(x)"),
    Primitive("sigmoid", 1, special.expit, lambda t, a: t.sigmoid(a), doc="1/(1+exp(-x))"),
    Primitive("tan", 1, np.tan, lambda t, a: t.tan(a), doc="tan(x)"),
    Primitive("atan", 1, np.arctan, lambda t, a: t.atan(a), doc="arctan(x)"),
    Primitive("erf", 1, special.erf, lambda t, a: t.erf(a), doc="erf(x)"),
    Primitive("erfc", 1, special.erfc, lambda t, a: t.erfc(a), doc="erfc(x)"),
    Primitive("expnabs", 1, lambda a: np.exp(-np.abs(a)), lambda t, a: t.exp(-a.abs()), doc="exp(-|x|)"),
    Primitive("gauss", 1, lambda a: np.exp(-a * a), lambda t, a: t.exp(-a * a), doc="exp(-x^2)"),
    Primitive("relu", 1, lambda a: np.maximum(a, 0.0), lambda t, a: t.clamp(a, min=0.0), doc="max(x,0)"),
    Primitive("minzero", 1, lambda a: np.minimum(a, 0.0), lambda t, a: t.clamp(a, max=0.0), doc="min(x,0)"),
    Primitive("abs", 1, np.abs, lambda t, a: a.abs(), doc="|x|"),
    Primitive("neg", 1, np.negative, lambda t, a: -a, doc="-x"),
    Primitive(
        "scale", 1, lambda a, s: s * a, lambda t, a, s: s * a,
        params=(ParamSpec("s", 1.0),), doc="s*x, s learnable per channel (starts at 1)",
    ),
    Primitive(
        "shift", 1, lambda a, b: a + b, lambda t, a, b: a + b,
        params=(ParamSpec("b", 0.0),), doc="x+b, b learnable per channel (starts at 0)",
    ),
    Primitive(
        "lconst", 1, lambda a, s: np.zeros_like(a) + s, lambda t, a, s: t.zeros_like(a) + s,
        params=(ParamSpec("s", 1.0),), doc="s, a learnable per-channel constant (starts at 1)",
    ),
]

BINARY = [
    Primitive("add", 2, np.add, lambda t, a, b: a + b, commutative=True, doc="a+b"),
    Primitive("sub", 2, np.subtract, lambda t, a, b: a - b, doc="a-b"),
    Primitive("mul", 2, np.multiply, lambda t, a, b: a * b, commutative=True, doc="a*b"),
    Primitive("div", 2, lambda a, b: a / (b + EPS), lambda t, a, b: a / (b + EPS), doc="a/(b+1e-8)"),
    Primitive("ratio", 2, lambda a, b: a / (a + b + EPS), lambda t, a, b: a / (a + b + EPS), doc="a/(a+b+1e-8)"),
    Primitive("max", 2, np.maximum, lambda t, a, b: t.maximum(a, b), commutative=True, doc="max(a,b)"),
    Primitive("min", 2, np.minimum, lambda t, a, b: t.minimum(a, b), commutative=True, doc="min(a,b)"),
    Primitive("gate", 2, lambda a, b: a * special.expit(b), lambda t, a, b: a * t.sigmoid(b), doc="a*sigmoid(b)"),
    Primitive(
        "rbf", 2, lambda a, b: np.exp(-((a - b) ** 2)), lambda t, a, b: t.exp(-((a - b) ** 2)),
        commutative=True, doc="exp(-(a-b)^2)",
    ),
    Primitive(
        "lapl", 2, lambda a, b: np.exp(-np.abs(a - b)), lambda t, a, b: t.exp(-(a - b).abs()),
        commutative=True, doc="exp(-|a-b|)",
    ),
    Primitive(
        "blend", 2, _np_blend, lambda t, a, b, beta: beta * a + (1.0 - beta) * b,
        params=(ParamSpec("beta", 1.0),), doc="beta*a+(1-beta)*b, beta learnable per channel (starts at 1)",
    ),
]


def gaaf_set() -> PrimitiveSet:
    return PrimitiveSet(
        "gaaf",
        UNARY + BINARY,
        description="GAAF's 22 unary and 11 binary operators, protected forms and learnable ops",
        constant_range=(-2.0, 2.0),
    )
