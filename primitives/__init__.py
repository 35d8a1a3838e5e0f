"""The operator library: primitive sets by name.

Built-in sets are made by explicit functions; third-party sets come from the
entry-point group ``gpengine.primitives`` (each entry a zero-argument callable
returning a `PrimitiveSet`). Unknown names fail with the list of known ones.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable

from primitives.arith import POW, arith_set
from primitives.gaaf import gaaf_set
from primitives.registry import ParamSpec, Primitive, PrimitiveSet

ENTRY_POINT_GROUP = "gpengine.primitives"

_BUILTIN: dict[str, Callable[[], PrimitiveSet]] = {"gaaf": gaaf_set, "arith": arith_set}
_CACHE: dict[str, PrimitiveSet] = {}


def _factories() -> dict[str, Callable[[], PrimitiveSet]]:
    found = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, lambda ep=ep: ep.load()())
    return found


def set_names() -> list[str]:
    return sorted(_factories())


def get_set(name: str) -> PrimitiveSet:
    """The primitive set called `name`, built once per process."""
    if name not in _CACHE:
        factories = _factories()
        if name not in factories:
            from gpengine.errors import PluginError

            raise PluginError(f"unknown primitive set {name!r} (known: {', '.join(sorted(factories))})")
        _CACHE[name] = factories[name]()
    return _CACHE[name]


def formula_set() -> PrimitiveSet:
    """Every numpy-evaluable primitive plus `pow`: for target formulas, not for search."""
    return gaaf_set().union(arith_set()).union(PrimitiveSet("pow", [POW]), name="formula")


__all__ = ["ParamSpec", "Primitive", "PrimitiveSet", "formula_set", "get_set", "set_names"]
