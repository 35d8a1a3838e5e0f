"""The operator library: primitive sets by name.

Built-in sets are made by explicit functions; third-party sets come from the
entry-point group ``gpengine.primitives`` (each entry a zero-argument callable
returning a `PrimitiveSet`, which takes the entry point's name). Unknown names
fail with the list of known ones.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable

import attrs

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
    """The primitive set called `name`, built once per process.

    `SET:op1,op2,...` is the part of SET with only those operators (e.g.
    `arith:add,sub,mul,div,neg,sin,cos`, DEAP's symbolic-regression example);
    the terminals (x, constants, parameter slots) stay as SET has them.
    """
    if name not in _CACHE:
        from gpengine.errors import PluginError, did_you_mean

        base, sep, ops = name.partition(":")
        factories = _factories()
        if base not in factories:
            raise PluginError(f"unknown primitive set {base!r}{did_you_mean(base, factories)} "
                              f"(known: {', '.join(sorted(factories))}; "
                              f"a plugin adds one under the entry-point group {ENTRY_POINT_GROUP!r})")
        pset = factories[base]()
        if pset.name != base:  # a plugin's set is known by its entry-point name, in workers too
            pset = attrs.evolve(pset, name=base)
        if sep:
            wanted = [op.strip() for op in ops.split(",") if op.strip()]
            unknown = [op for op in wanted if op not in pset.primitives]
            if not wanted:
                raise PluginError(f"primitive set {name!r} names no operators after ':' "
                                  f"(e.g. {base}:{','.join(list(pset.primitives)[:3])})")
            if unknown:
                raise PluginError(f"primitive set {name!r}: {', '.join(map(repr, unknown))} "
                                  f"not in {base!r}{did_you_mean(unknown[0], pset.primitives)} "
                                  f"(it has: {', '.join(pset.primitives)})")
            pset = pset.subset(dict.fromkeys(wanted), name=name)
        _CACHE[name] = pset
    return _CACHE[name]


def formula_set() -> PrimitiveSet:
    """Every numpy-evaluable primitive plus `pow`: for target formulas, not for search."""
    return gaaf_set().union(arith_set()).union(PrimitiveSet("pow", [POW]), name="formula")


__all__ = ["ParamSpec", "Primitive", "PrimitiveSet", "formula_set", "get_set", "set_names"]
