"""Zero-cost pre-screen: reject activations that cannot train, before training.

In a BNN the activation AF sits in front of ``sign(clip(AF(x), -1.3, 1.3))``
and the straight-through estimator passes ``1{|AF(x)| <= 1.3} * AF'(x)`` back
(see shared/reference/GAAF.md). Inputs arrive batch-normalised, so a probe
grid on [-3, 3] covers what the network feeds in. A candidate is rejected,
with the first reason that applies, when on that grid it has

* "non-finite output": a NaN or infinity;
* "blows up": some |AF(x)| > 1e6;
* "constant output": no variation at all;
* "degenerate sign pattern": sign(clip(AF(x))), with sign(0) = +1, takes one
  value at every grid point but x = 0, so every binary activation is the same
  whatever the input (a batch-normalised input is never exactly 0: `-x * x`,
  +1 at x = 0 alone, makes a network that gives every image one answer);
* "zero gradient": the STE passes a non-negligible gradient at fewer than 2%
  of the grid points, so nothing upstream learns.

The first two are checked at the initial parameter values, which is where
training starts. The last three must also hold at each of the fingerprint's
probe points (all positive, and mixed signs): learnable parameters can move a
function out of them (``blend(1.0, x)`` is constant at beta = 1, and not after
a step; ``cos(x) - lconst(x)`` is negative everywhere at s = 1 and takes both
signs once s < 1).

One call is one to three numpy evaluations over 3 x 121 points: well under a
millisecond for trees of search size.
"""

from __future__ import annotations

import numpy as np

from gpengine.expr import Expr
from gpengine.fingerprint import probe_points, values_and_derivatives
from gpengine.numeric import param_sites
from primitives.registry import PrimitiveSet

GRID = np.linspace(-3.0, 3.0, 121)
GRID.setflags(write=False)
_OFF_ZERO = GRID != 0.0  # where the sign pattern is judged
_OFF_ZERO.setflags(write=False)
CLIP = 1.3
BLOW_UP = 1e6
CONSTANT_RTOL = 1e-9
GRADIENT_TOL = 1e-6
MIN_PASSING = 0.02

NON_FINITE = "non-finite output"
BLOWS_UP = "blows up"
CONSTANT = "constant output"
DEGENERATE_SIGN = "degenerate sign pattern"
ZERO_GRADIENT = "zero gradient"
REASONS = (NON_FINITE, BLOWS_UP, CONSTANT, DEGENERATE_SIGN, ZERO_GRADIENT)


def _untrainable(values: np.ndarray, derivs: np.ndarray) -> str | None:
    """The reason among those learning might escape, or None."""
    scale = max(1.0, float(np.max(np.abs(values))))
    if np.ptp(values) <= CONSTANT_RTOL * scale:
        return CONSTANT
    positive = (np.clip(values, -CLIP, CLIP) >= 0.0)[_OFF_ZERO]
    if positive.all() or not positive.any():
        return DEGENERATE_SIGN
    with np.errstate(invalid="ignore"):
        passing = (np.abs(values) <= CLIP) & (np.abs(derivs) > GRADIENT_TOL) & np.isfinite(derivs)
    if passing.mean() < MIN_PASSING:
        return ZERO_GRADIENT
    return None


def prescreen(expr: Expr, pset: PrimitiveSet) -> str | None:
    """A reason string if `expr` should not be trained as an activation, else None."""
    values, derivs = values_and_derivatives(expr, pset, GRID)
    if not np.isfinite(values).all():
        return NON_FINITE
    if np.max(np.abs(values)) > BLOW_UP:
        return BLOWS_UP
    reason = _untrainable(values, derivs)
    if reason is None:
        return None
    n = len(param_sites(expr, pset))
    for params in probe_points(n) if n else ():
        values, derivs = values_and_derivatives(expr, pset, GRID, params)
        if np.isfinite(values).all() and np.max(np.abs(values)) <= BLOW_UP and _untrainable(values, derivs) is None:
            return None  # training can take it there
    return reason
