"""Find evaluator plugins through the entry-point group ``gpengine.evaluators``.

The core never imports the built-in evaluators directly: they are registered
in pyproject.toml exactly like third-party plugins. A plugin is checked when it
loads (a class with a keyword-only `evaluate(expr, *, budget, seed)`), so a
broken plugin fails at configuration time, not mid-search.
"""

from __future__ import annotations

import inspect
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from gpengine.errors import GpengineError, OptionError, PluginError, did_you_mean
from gpengine.evaluator import Evaluator

GROUP = "gpengine.evaluators"


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def evaluator_names() -> list[str]:
    return sorted(_entry_points())


def check_evaluator_class(name: str, cls: Any) -> None:
    if not inspect.isclass(cls):
        raise PluginError(f"evaluator {name!r}: entry point must name a class, got {type(cls).__name__}")
    evaluate = getattr(cls, "evaluate", None)
    if evaluate is None or not callable(evaluate):
        raise PluginError(f"evaluator {name!r}: class {cls.__qualname__} has no evaluate method")
    try:
        params = inspect.signature(evaluate).parameters
    except (TypeError, ValueError) as exc:  # a builtin with no signature to read (evaluate = max)
        raise PluginError(f"evaluator {name!r}: cannot read the signature of {cls.__qualname__}.evaluate: {exc}") from None
    for kw in ("budget", "seed"):
        p = params.get(kw)
        if p is None or p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            raise PluginError(
                f"evaluator {name!r}: evaluate must accept the keyword argument {kw!r} "
                "(signature: evaluate(self, expr, *, budget, seed))"
            )
    if not issubclass(cls, Evaluator):
        raise PluginError(f"evaluator {name!r}: {cls.__qualname__} must subclass gpengine.evaluator.Evaluator")


def _hint(name: str, eps: dict[str, EntryPoint]) -> str:
    """What a plugin author most likely got wrong: the entry-point group's spelling, or the name's."""
    from importlib.metadata import distributions

    try:
        elsewhere = sorted({ep.group for dist in distributions() for ep in dist.entry_points
                            if ep.name == name and ep.group != GROUP and "gpengine" in ep.group.lower()
                            and "primitives" not in ep.group})
    except Exception:  # noqa: BLE001 - a hint must never replace the error it explains
        elsewhere = []
    if elsewhere:
        return (f": it is registered under the entry-point group {elsewhere[0]!r}, not {GROUP!r}"
                " (fix the package's pyproject.toml, then pip install it again)")
    return did_you_mean(name, eps)


def unknown_evaluator(name: str, eps: dict[str, EntryPoint] | None = None) -> PluginError:
    """The error for an evaluator name no entry point has, with the likely slip and the installed names."""
    eps = _entry_points() if eps is None else eps
    known = ", ".join(sorted(eps)) or "none installed"
    return PluginError(f"unknown evaluator {name!r}{_hint(name, eps)} (installed: {known})")


def load_evaluator_class(name: str) -> type[Evaluator]:
    eps = _entry_points()
    if name not in eps:
        raise unknown_evaluator(name, eps)
    try:
        cls = eps[name].load()
    except (Exception, SystemExit) as exc:  # a plugin that cannot even import (or exits while importing)
        raise PluginError(f"evaluator {name!r} failed to load: {type(exc).__name__}: {exc}") from exc
    check_evaluator_class(name, cls)
    return cls


def build_evaluator(name: str, cls: type[Evaluator], options: dict[str, Any]) -> Evaluator:
    """`cls(**options)`; whatever else its constructor raises becomes one line for the user.

    A GpengineError (a bad option value, missing data) passes as it is. Anything else,
    say a TypeError from an option value no validator checked, would otherwise show a
    traceback, or, in a worker, fail every evaluation of the search one by one.
    """
    try:
        return cls(**options)
    except OptionError as exc:  # named by its class so far; users know it by this name
        raise exc.renamed(f"evaluator {name!r}") from None
    except GpengineError:
        raise
    except Exception as exc:  # noqa: BLE001 - the plugin's, reported as one line
        given = ", ".join(f"{k}={v!r}" for k, v in sorted(options.items()) if k != "primitives")
        detail = (str(exc).strip().splitlines() or [""])[0]
        raise PluginError(f"evaluator {name!r} cannot be built from its options ({given or 'defaults'}): "
                          f"{type(exc).__name__}: {detail}") from exc


def make_evaluator(name: str, options: dict[str, Any] | None = None) -> Evaluator:
    return build_evaluator(name, load_evaluator_class(name), dict(options or {}))
