"""Behaviour fingerprint: one digest for expressions that compute the same function.

Canonical form catches rewrites it knows (`add(x, x)` stays apart from
`mul(2.0, x)`); the fingerprint catches the rest by looking at behaviour. It
evaluates the canonical form's numpy form on a fixed probe grid -- 201 points in
[-4, 4] plus a few of larger magnitude, where activations saturate or blow up
-- together with central-difference derivatives (the straight-through
estimator trains on the derivative, so two functions that agree in value but
not in slope are different activations).

Learnable parameters are set to fixed pseudo-random values, one per parameter
site index (a fixed-seed generator per index, uniform in [0.5, 1.5]), not to
their initial values: at init `scale(x)` equals `x` and `blend(a, b)` equals
`a`, but after training they do not. The canonical form numbers the sites, so
commutative reorderings get the same parameter values.

Values and derivatives are rounded to 21 significant bits (about 6 significant
digits; binary rounding is exact and vectorised), magnitudes below a floor are
flushed to zero (so float noise like 1e-17 does not separate `(x + 0.1) - 0.1`
from `x`), and NaN / +inf / -inf get fixed sentinels. Rounding is a
quantisation: two functions a rounding boundary apart can still get different
digests (the cost is one duplicate evaluation), and merging two different
functions needs them to agree to ~6 digits in value and slope at every probe.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from gpengine.canonical import canonicalize
from gpengine.expr import Expr
from gpengine.numeric import evaluate, param_sites
from primitives.registry import PrimitiveSet

PROBE_SEED = 20230101
PARAM_RANGE = (0.5, 1.5)
STEP = 1e-4  # central-difference step
MANTISSA_BITS = 21  # relative resolution 2**-21 ~ 5e-7: about 6 significant digits
_SENTINEL_EXPONENT = 1 << 40  # no float64 has it: marks NaN / +inf / -inf
VALUE_FLOOR = 1e-9
DERIVATIVE_FLOOR = 1e-6

GRID = np.concatenate(
    [np.array([-100.0, -30.0, -10.0, -6.0]), np.linspace(-4.0, 4.0, 201), np.array([6.0, 10.0, 30.0, 100.0])]
)
GRID.setflags(write=False)


@functools.cache
def _param_value(index: int) -> float:
    return float(np.random.default_rng([PROBE_SEED, index]).uniform(*PARAM_RANGE))


def probe_params(n: int) -> list[float]:
    """The fixed probe values of the first `n` parameter sites (independent of n)."""
    return [_param_value(i) for i in range(n)]


def values_and_derivatives(
    expr: Expr, pset: PrimitiveSet, x: np.ndarray, params: list[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """f(x) and central differences, from one evaluation over the stacked points.

    The divisor is the step between the float64 points actually used, not 2h.
    """
    above, below = x + STEP, x - STEP
    out = evaluate(expr, pset, np.concatenate([x, above, below]), params)
    n = len(x)
    with np.errstate(all="ignore"):
        deriv = (out[n : 2 * n] - out[2 * n :]) / (above - below)
    return out[:n], deriv


def behaviour(expr: Expr, pset: PrimitiveSet) -> tuple[np.ndarray, np.ndarray]:
    """(values, derivatives) of the canonical form on `GRID` at the probe parameters."""
    canon = canonicalize(expr, pset)
    params = probe_params(len(param_sites(canon, pset)))
    return values_and_derivatives(canon, pset, GRID, params)


def _quantise(a: np.ndarray, floor: float) -> bytes:
    """Binary rounding: mantissa to `MANTISSA_BITS` bits, exact and vectorised.

    Magnitudes below `floor` become 0; NaN, +inf, -inf get sentinel codes.
    Little-endian int64 pairs (mantissa, exponent), so the bytes are the same
    on every platform.
    """
    with np.errstate(invalid="ignore"):
        a = np.where(np.abs(a) < floor, 0.0, a)
    finite = np.isfinite(a)
    mant, expo = np.frexp(np.where(finite, a, 0.0))
    full = float(2**MANTISSA_BITS)
    q = np.rint(mant * full)  # exact: scaling by a power of two, then integer rounding
    carry = np.abs(q) == full  # rounded up to the next binade
    q = np.where(carry, q / 2.0, q).astype(np.int64)
    expo = expo.astype(np.int64) + carry
    q = np.where(np.isnan(a), 0, np.where(np.isposinf(a), 1, np.where(np.isneginf(a), -1, q)))
    expo = np.where(finite, expo, _SENTINEL_EXPONENT)
    return np.stack([q, expo]).astype("<i8").tobytes()


def fingerprint(expr: Expr, pset: PrimitiveSet) -> str:
    """Hex digest of the rounded behaviour: equal for functionally identical expressions."""
    values, derivs = behaviour(expr, pset)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(_quantise(values, VALUE_FLOOR))
    digest.update(_quantise(derivs, DERIVATIVE_FLOOR))
    return digest.hexdigest()
