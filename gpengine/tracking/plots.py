"""Static PNG plots for tracking: an activation and its derivative, fitness over generations.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot,
no display, no global figure state), so plotting is safe from the tracker's
writer thread and on headless machines.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

X_RANGE = (-3.0, 3.0)


def _figure(width: float = 6.0, height: float = 3.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    # fixed margins, not tight_layout(): the same look for a third less time per plot
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.14, top=0.9)
    return fig


def activation_curve(expr: Any, pset: Any, n: int = 601) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x over [-3, 3], f(x) and the central-difference derivative f'(x) (learnable params at init)."""
    from gpengine.numeric import evaluate

    x = np.linspace(*X_RANGE, n)
    y = np.asarray(evaluate(expr, pset, x), dtype=np.float64)
    with np.errstate(all="ignore"):
        dy = np.gradient(y, x)
    return x, y, dy


def plot_activation(expr: Any, pset: Any, path: str | Path, title: str | None = None) -> Path:
    """PNG of the expression's values and numerical derivative over [-3, 3].

    Non-finite values are left as gaps; the y-range is clipped to robust
    percentiles so a single spike does not flatten the curve a reader wants to see.
    """
    x, y, dy = activation_curve(expr, pset)
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(x, np.where(np.isfinite(y), y, np.nan), label="f(x)", color="#1f77b4", lw=2)
    ax.plot(x, np.where(np.isfinite(dy), dy, np.nan), label="f'(x)", color="#d62728", lw=1.4, ls="--")
    finite = np.concatenate([y[np.isfinite(y)], dy[np.isfinite(dy)]])
    if finite.size:
        lo, hi = np.percentile(finite, [1, 99])
        if hi > lo:
            margin = 0.08 * (hi - lo)
            ax.set_ylim(lo - margin, hi + margin)
    ax.axhline(0, color="#999", lw=0.6)
    ax.axvline(0, color="#999", lw=0.6)
    ax.set_xlim(*X_RANGE)
    from gpengine.numeric import param_sites

    # Each layer learns its own values of these; the picture can only show where they start,
    # and `shift(shift(x))` would otherwise read as the identity it starts as.
    learnable = len(param_sites(expr, pset))
    start = "1 learnable parameter at its initial value" if learnable == 1 else \
        f"{learnable} learnable parameters at their initial values"
    ax.set_xlabel("x" + (f"   ({start})" if learnable else ""))
    ax.legend(loc="best", fontsize=8)
    text = title if title is not None else str(expr)
    ax.set_title(text if len(text) <= 70 else text[:69] + "\u2026", fontsize=9)
    path = Path(path)
    fig.savefig(path, format="png")
    return path


def activation_plotter(pset: Any, directory: str | Path | None = None) -> Callable[[Any], Path | None]:
    """An `evaluator_plot` callable for MlflowTracker: Individual -> PNG of its activation.

    Files go to `directory` (default: a fresh temporary folder kept for the
    process's lifetime); a plot that cannot be drawn gives None, never an error,
    because a missing picture must not stop a search.
    """
    holder: list[Any] = []
    if directory is None:
        holder.append(tempfile.TemporaryDirectory(prefix="gpengine-plots-"))
        directory = holder[0].name
    folder = Path(directory)

    def plot(individual: Any) -> Path | None:
        _ = holder  # keep the temporary folder alive as long as the plotter
        try:
            return plot_activation(individual.expr, pset, folder / f"activation-{individual.id}.png")
        except Exception:  # noqa: BLE001 - a plot is optional decoration
            return None

    return plot


def _field(s: Any, name: str) -> float:
    v = s.get(name) if isinstance(s, dict) else getattr(s, name, None)
    return float(v) if v is not None else math.nan


def fitness_view(best: np.ndarray, median: np.ndarray, mean: np.ndarray) -> tuple[float, float, bool] | None:
    """The y range to show: best and median always, the mean only where it stays near them.

    One wild individual drags a generation's mean far off (an MSE of 1e5 beside fits of 1e-3), and an
    axis scaled to it flattens the best curve into a line; the median does not move that way.
    Returns (low, high, mean shown), or None to leave the axis to matplotlib."""
    core = np.concatenate([best, median])
    core = core[np.isfinite(core)]
    if core.size == 0:
        return None
    lo, hi = float(core.min()), float(core.max())
    span = hi - lo or max(abs(hi), 1.0) * 0.1
    means = mean[np.isfinite(mean)]
    if means.size == 0 or (means.min() >= lo - 2 * span and means.max() <= hi + 2 * span):
        lo, hi = min([lo, *means]), max([hi, *means])
        return lo - 0.05 * (hi - lo or span), hi + 0.05 * (hi - lo or span), True
    return lo - 0.05 * span, hi + 0.05 * span, False


def plot_fitness(stats_list: Sequence[Any] | Iterable[Any], path: str | Path, title: str = "fitness") -> Path:
    """PNG of best, mean and median fitness per generation (GenerationStats or dicts)."""
    stats = sorted(stats_list, key=lambda s: _field(s, "generation"))
    gens = [_field(s, "generation") for s in stats]
    curves = {}
    for name in ("best", "mean", "median"):
        ys = np.array([_field(s, name) for s in stats], dtype=np.float64)
        ys[~np.isfinite(ys)] = np.nan
        curves[name] = ys
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    view = fitness_view(curves["best"], curves["median"], curves["mean"])
    for name, style in (("best", "-"), ("mean", ":"), ("median", "--")):
        label = name if name != "mean" or view is None or view[2] else "mean (off the scale)"
        ax.plot(gens, curves[name], style, marker="o" if len(gens) < 30 else None, ms=3, label=label)
    if view is not None:
        ax.set_ylim(view[0], view[1])
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if gens:
        ax.legend(loc="best", fontsize=8)
    path = Path(path)
    # one plot a search, whose tick labels can be long (26.25, -1.2e+03): fit the margins to them,
    # where the fixed ones let the axis label run into the ticks
    fig.savefig(path, format="png", bbox_inches="tight")
    return path
