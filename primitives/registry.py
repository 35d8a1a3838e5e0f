"""Primitive operators and the sets they are grouped into.

A `Primitive` holds everything the engine and the evaluators need to know of
one operator: its arity, a numpy form (used by the core for fingerprints,
constant folding and cheap evaluators), a torch form (used by evaluators that
train), whether it is commutative, and the learnable parameters it owns.

Torch forms take the torch module as their first argument (`lambda t, a:
t.sin(a)`), so that defining a set never imports torch: the core, which reads
these sets, must stay free of it.

Learnable parameters are per channel in torch (one value per channel of the
layer the activation sits in) and scalars in numpy.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import attrs


@attrs.frozen
class ParamSpec:
    name: str
    init: float


@attrs.frozen
class Primitive:
    name: str
    arity: int
    numpy: Callable[..., Any] = attrs.field(eq=False, repr=False)
    torch: Callable[..., Any] = attrs.field(eq=False, repr=False)
    commutative: bool = False
    params: tuple[ParamSpec, ...] = ()
    doc: str = ""

    def __attrs_post_init__(self) -> None:
        if self.arity < 1:
            raise ValueError(f"primitive {self.name!r}: arity must be at least 1 (x and constants are terminals)")
        if self.commutative and self.arity != 2:
            raise ValueError(f"primitive {self.name!r}: only binary primitives can be commutative")

    @property
    def n_params(self) -> int:
        return len(self.params)


@attrs.frozen
class PrimitiveSet:
    """A named group of primitives plus the terminals a search may use.

    `constant_range`: ephemeral random constants are drawn uniformly from it
    (None: no constants); `integer_constants` of them are drawn instead as
    integers of that range (DEAP's example uses -1, 0 and 1 only: small
    integers are what most formulas need, and a float near 1 is a local optimum
    that a search polishes for many generations). `param_slots`: whether free
    learnable-parameter terminals may appear.
    """

    name: str
    primitives: Mapping[str, Primitive] = attrs.field(converter=lambda ps: {p.name: p for p in ps} if not isinstance(ps, Mapping) else dict(ps))
    description: str = ""
    constant_range: tuple[float, float] | None = None
    param_slots: bool = False
    integer_constants: float = attrs.field(default=0.0, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)])

    def get(self, name: str) -> Primitive | None:
        return self.primitives.get(name)

    def __getitem__(self, name: str) -> Primitive:
        try:
            return self.primitives[name]
        except KeyError:
            from gpengine.errors import PluginError, did_you_mean

            raise PluginError(
                f"unknown primitive {name!r} in set {self.name!r}{did_you_mean(name, self.primitives)} "
                f"(known: {', '.join(sorted(self.primitives))})"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.primitives

    def __iter__(self):
        return iter(self.primitives.values())

    def __len__(self) -> int:
        return len(self.primitives)

    def names(self) -> list[str]:
        return list(self.primitives)

    def with_arity(self, arity: int) -> list[Primitive]:
        return [p for p in self.primitives.values() if p.arity == arity]

    def union(self, other: "PrimitiveSet", name: str | None = None) -> "PrimitiveSet":
        merged = dict(self.primitives)
        merged.update(other.primitives)
        return attrs.evolve(self, name=name or f"{self.name}+{other.name}", primitives=merged)

    def subset(self, names: Iterable[str], name: str | None = None) -> "PrimitiveSet":
        chosen = [self[n] for n in names]
        return attrs.evolve(self, name=name or self.name, primitives=chosen)
