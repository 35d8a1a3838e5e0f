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
commutative reorderings get the same parameter values. A tree with parameters
is probed at a second, mixed-sign point too (site 0 negative, then
alternating; magnitudes from another generator): training moves a shift or a
scale to either sign, and one positive point alone merges functions that part
there (`max(shift(x), x)` is `shift(x)` for a positive shift, `x` for a
negative one; `relu(scale(x))` and `scale(relu(x))` agree for a positive
scale only).

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
from gpengine.memo import SetMemo
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
def _param_value(index: int, point: int = 0) -> float:
    # [seed, index, 0] is the same seed sequence as [seed, index]: point 0 keeps the values it always had
    magnitude = float(np.random.default_rng([PROBE_SEED, index, point]).uniform(*PARAM_RANGE))
    return -magnitude if point and index % 2 == 0 else magnitude


def probe_params(n: int, point: int = 0) -> list[float]:
    """The fixed probe values of the first `n` parameter sites (independent of n) at probe point
    `point`: 0 all positive, 1 mixed signs."""
    return [_param_value(i, point) for i in range(n)]


def probe_points(n: int) -> list[list[float]]:
    """The parameter points a tree with `n` sites is fingerprinted at: one when it has none."""
    return [probe_params(n, point) for point in range(2 if n else 1)]


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


def _quantise_arrays(a: np.ndarray, floor: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mantissa, exponent) int64 codes of `a` rounded to `MANTISSA_BITS` bits; see `_quantise`."""
    with np.errstate(invalid="ignore"):
        a = np.where(np.abs(a) < floor, 0.0, a)
    finite = np.isfinite(a)
    all_finite = bool(finite.all())
    mant, expo = np.frexp(a if all_finite else np.where(finite, a, 0.0))
    q = np.rint(mant * float(2**MANTISSA_BITS))  # exact: scaling by a power of two, then integer rounding
    carry = np.abs(q) == float(2**MANTISSA_BITS)  # rounded up to the next binade
    q = np.where(carry, q / 2.0, q).astype(np.int64)
    expo = expo.astype(np.int64) + carry
    if not all_finite:  # the usual case skips these passes
        q = np.where(np.isnan(a), 0, np.where(np.isposinf(a), 1, np.where(np.isneginf(a), -1, q)))
        expo = np.where(finite, expo, _SENTINEL_EXPONENT)
    return q, expo


def _quantise(a: np.ndarray, floor: float) -> bytes:
    """Binary rounding: mantissa to `MANTISSA_BITS` bits, exact and vectorised.

    Magnitudes below `floor` become 0; NaN, +inf, -inf get sentinel codes.
    Little-endian int64 pairs (mantissa, exponent), so the bytes are the same
    on every platform.
    """
    return np.stack(_quantise_arrays(a, floor)).astype("<i8").tobytes()


# The probe points of `fingerprint`, stacked as `values_and_derivatives` stacks them,
# and the per-element floors of values and derivatives: built once, not per call.
_GRID_ABOVE, _GRID_BELOW = GRID + STEP, GRID - STEP
_GRID_STACKED = np.concatenate([GRID, _GRID_ABOVE, _GRID_BELOW])
_GRID_SPAN = _GRID_ABOVE - _GRID_BELOW
_FLOORS = np.concatenate([np.full(len(GRID), VALUE_FLOOR), np.full(len(GRID), DERIVATIVE_FLOOR)])
for _a in (_GRID_STACKED, _GRID_SPAN, _FLOORS):
    _a.setflags(write=False)


def _digest(canon: Expr, pset: PrimitiveSet) -> str:
    """The bytes of `_quantise(values, VALUE_FLOOR) + _quantise(derivs, DERIVATIVE_FLOOR)` at each probe
    point, hashed (a tree without parameters hashes the same bytes as before the second point existed).

    One numpy pass over values and derivatives together instead of two.
    """
    h = hashlib.blake2b(digest_size=16)
    n = len(GRID)
    for params in probe_points(len(param_sites(canon, pset))):
        out = evaluate(canon, pset, _GRID_STACKED, params)
        with np.errstate(all="ignore"):
            deriv = (out[n : 2 * n] - out[2 * n :]) / _GRID_SPAN
        q, expo = _quantise_arrays(np.concatenate([out[:n], deriv]), _FLOORS)
        h.update(np.stack([q[:n], expo[:n], q[n:], expo[n:]]).astype("<i8").tobytes())
    return h.hexdigest()


_MEMO = SetMemo()  # results by tree, per primitive set


def fingerprint(expr: Expr, pset: PrimitiveSet) -> str:
    """Hex digest of the rounded behaviour: equal for functionally identical expressions.

    Memoised by canonical tree (a search proposes the same trees again and
    again); trees with a `-0.0` constant are not memoised, as `-0.0 == 0.0`.
    """
    canon = canonicalize(expr, pset)
    memo = _MEMO.for_set(pset)
    cacheable = not canon.has_negative_zero
    if cacheable and (hit := memo.get(canon)) is not None:
        return hit
    out = _digest(canon, pset)
    if cacheable:
        memo[canon] = out
    return out
