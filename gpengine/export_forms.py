"""How each built-in primitive is written outside gpengine: torch code, sympy text, LaTeX.

`gpengine export` turns an expression into a standalone torch file and into
formulas. The primitives' own torch forms are callables (``lambda t, a:
t.sin(a)``), which cannot be printed, so each built-in primitive has a
`Form` here: three templates that compute exactly what the callable computes
(same operations in the same order, the same 1e-8 guards and protections), so
the exported module matches the evaluator value for value and gradient for
gradient. tests/test_export.py checks every form against the callables.

Forms are found by the identity of the primitive's torch callable, not by its
name: `div` is a/(b+1e-8) in the GAAF set and protected division in `arith`,
and a union of sets (the `formula` set) keeps whichever it holds.

Templates: ``@0``/``@1`` are the arguments (parenthesised when not atomic),
``@r0``/``@r1`` the same unparenthesised (inside a call), ``@p0`` the
operator's learnable parameter. In torch templates every argument is a plain
variable, so no parentheses are ever needed there.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from gpengine.errors import GpengineError


class ExportError(GpengineError):
    """An expression that cannot be exported (a primitive without a written form)."""


@attrs.frozen
class Form:
    torch: str
    sympy: str
    latex: str
    atomic: bool = False  # result needs no parentheses as an argument (a call, |.|, a symbol)


def F(torch: str, sympy: str, latex: str, atomic: bool = False) -> Form:  # noqa: N802 - a table row
    return Form(torch, sympy, latex, atomic)


_EPS_L = r"10^{-8}"

GAAF = {
    "ident": F("@0", "@r0", "@r0"),  # special-cased: passes its argument through
    "zero": F("torch.zeros_like(@0)", "0", "0", True),
    "square": F("@0 * @0", "@0**2", "@0^{2}"),
    "cube": F("@0 * @0 * @0", "@0**3", "@0^{3}"),
    "ssqrt": F("torch.sign(@0) * torch.sqrt(@0.abs() + 1e-08)", "sign(@r0)*sqrt(Abs(@r0) + 1.0e-8)",
               r"\operatorname{sign}\left(@r0\right) \sqrt{\left|@r0\right| + " + _EPS_L + "}"),
    "log": F("torch.log(@0.abs() + 1e-08)", "log(Abs(@r0) + 1.0e-8)",
             r"\log\left(\left|@r0\right| + " + _EPS_L + r"\right)", True),
    "sin": F("torch.sin(@0)", "sin(@r0)", r"\sin\left(@r0\right)", True),
    "cos": F("torch.cos(@0)", "cos(@r0)", r"\cos\left(@r0\right)", True),
    "sigmoid": F("torch.sigmoid(@0)", "1/(1 + exp(-@0))", r"\sigma\left(@r0\right)", True),
    "tan": F("torch.tan(@0)", "tan(@r0)", r"\tan\left(@r0\right)", True),
    "atan": F("torch.atan(@0)", "atan(@r0)", r"\arctan\left(@r0\right)", True),
    "erf": F("torch.erf(@0)", "erf(@r0)", r"\operatorname{erf}\left(@r0\right)", True),
    "erfc": F("torch.erfc(@0)", "erfc(@r0)", r"\operatorname{erfc}\left(@r0\right)", True),
    "expnabs": F("torch.exp(-@0.abs())", "exp(-Abs(@r0))", r"e^{-\left|@r0\right|}", True),
    "gauss": F("torch.exp(-@0 * @0)", "exp(-@0**2)", r"e^{-@0^{2}}", True),
    "relu": F("torch.clamp(@0, min=0.0)", "Max(@r0, 0)", r"\max\left(@r0, 0\right)", True),
    "minzero": F("torch.clamp(@0, max=0.0)", "Min(@r0, 0)", r"\min\left(@r0, 0\right)", True),
    "abs": F("@0.abs()", "Abs(@r0)", r"\left|@r0\right|", True),
    "neg": F("-@0", "-@0", "-@0"),
    "scale": F("@p0 * @0", "@p0*@0", "@p0 @0"),
    "shift": F("@0 + @p0", "@r0 + @p0", "@r0 + @p0"),
    "lconst": F("torch.zeros_like(@0) + @p0", "@p0", "@p0", True),
    "add": F("@0 + @1", "@r0 + @1", "@r0 + @1"),
    "sub": F("@0 - @1", "@r0 - @1", "@r0 - @1"),
    "mul": F("@0 * @1", "@0*@1", r"@0 \cdot @1"),
    "div": F("@0 / (@1 + 1e-08)", "@0/(@r1 + 1.0e-8)", r"\frac{@r0}{@r1 + " + _EPS_L + "}"),
    "ratio": F("@0 / (@0 + @1 + 1e-08)", "@0/(@r0 + @r1 + 1.0e-8)", r"\frac{@r0}{@r0 + @r1 + " + _EPS_L + "}"),
    "max": F("torch.maximum(@0, @1)", "Max(@r0, @r1)", r"\max\left(@r0, @r1\right)", True),
    "min": F("torch.minimum(@0, @1)", "Min(@r0, @r1)", r"\min\left(@r0, @r1\right)", True),
    "gate": F("@0 * torch.sigmoid(@1)", "@0/(1 + exp(-@1))", r"@0 \, \sigma\left(@r1\right)"),
    "rbf": F("torch.exp(-((@0 - @1) ** 2))", "exp(-(@r0 - @r1)**2)", r"e^{-\left(@r0 - @r1\right)^{2}}", True),
    "lapl": F("torch.exp(-(@0 - @1).abs())", "exp(-Abs(@r0 - @r1))", r"e^{-\left|@r0 - @r1\right|}", True),
    "blend": F("@p0 * @0 + (1.0 - @p0) * @1", "@p0*@0 + (1 - @p0)*@1", r"@p0 @0 + \left(1 - @p0\right) @1"),
}

_PDIV_T = "torch.where(@1.abs() > 0.001, @0 / torch.where(@1.abs() > 0.001, @1, torch.ones_like(@1)), torch.ones_like(@0 * @1))"
_PLOG_T = ("torch.where(@0.abs() > 0.001, torch.log(torch.where(@0.abs() > 0.001, @0.abs(), torch.ones_like(@0.abs()))), "
           "torch.zeros_like(@0))")
ARITH = {
    "add": GAAF["add"],
    "sub": GAAF["sub"],
    "mul": GAAF["mul"],
    "div": F(_PDIV_T, "Piecewise((@0/@1, Abs(@r1) > 0.001), (1, True))",
             r"\begin{cases} \frac{@r0}{@r1} & \left|@r1\right| > 0.001 \\ 1 & \text{otherwise} \end{cases}", True),
    "neg": GAAF["neg"],
    "sin": GAAF["sin"],
    "cos": GAAF["cos"],
    "exp": F("torch.exp(@0)", "exp(@r0)", r"e^{@r0}", True),
    "log": F(_PLOG_T, "Piecewise((log(Abs(@r0)), Abs(@r0) > 0.001), (0, True))",
             r"\begin{cases} \log\left|@r0\right| & \left|@r0\right| > 0.001 \\ 0 & \text{otherwise} \end{cases}", True),
    "pow": F("torch.pow(@0, @1)", "@0**@1", "@0^{@r1}"),
}

_INDEX: dict[int, Form] | None = None


def _index() -> dict[int, Form]:
    """Form of each built-in primitive, keyed by the id of its torch callable."""
    global _INDEX
    if _INDEX is None:
        from primitives import arith, gaaf

        index = {}
        for prim in gaaf.UNARY + gaaf.BINARY:
            index[id(prim.torch)] = GAAF[prim.name]
        for prim in arith.ARITH + [arith.POW]:
            index[id(prim.torch)] = ARITH[prim.name]
        _INDEX = index
    return _INDEX


def form_of(prim: Any) -> Form:
    form = _index().get(id(prim.torch))
    if form is None:
        raise ExportError(
            f"primitive {prim.name!r} has no written torch/sympy/LaTeX form "
            "(export knows the built-in gaaf and arith primitives)"
        )
    return form


_TOKEN = re.compile(r"@(r|p)?(\d)")


def fill(template: str, args: list[str], raw: list[str], params: list[str]) -> str:
    """Substitute @0, @r0 and @p0 tokens (one pass: substituted text is never rescanned)."""

    def sub(m: re.Match) -> str:
        k = int(m.group(2))
        return {"r": raw, "p": params}.get(m.group(1), args)[k]

    return _TOKEN.sub(sub, template)
