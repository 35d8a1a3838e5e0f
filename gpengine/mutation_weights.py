"""MutationWeights: how often each mutation is drawn when `variation.vary` does not cross over.

The one source of the default weights: `SearchConfig.mutation_weights` is a
table built from this class, so a search given some weights (`--set
mutation_weights.point=2`) keeps the defaults below for the others.
"""

from __future__ import annotations

from typing import Mapping

import attrs
import numpy as np

from gpengine.errors import ConfigError


def _weight(_inst, attribute, value) -> None:
    if not (value >= 0 and np.isfinite(value)):
        raise ConfigError(f"mutation weight {attribute.name} must be finite and >= 0, got {value}")


@attrs.frozen
class MutationWeights:
    """Relative chance of each mutation when `vary` does not cross over.

    Defaults favour small moves (point, constant) over disruptive ones, as
    SymbolicRegression.jl's defaults do; hoist and shrink at half weight keep
    bloat in check without starving growth.
    """

    point: float = attrs.field(default=1.0, converter=float, validator=_weight)
    subtree: float = attrs.field(default=1.0, converter=float, validator=_weight)
    hoist: float = attrs.field(default=0.5, converter=float, validator=_weight)
    shrink: float = attrs.field(default=0.5, converter=float, validator=_weight)
    constant: float = attrs.field(default=1.0, converter=float, validator=_weight)
    snap: float = attrs.field(default=0.3, converter=float, validator=_weight)

    def __attrs_post_init__(self) -> None:
        if sum(attrs.astuple(self)) <= 0:
            raise ConfigError("at least one mutation weight must be positive")

    def as_dict(self) -> dict[str, float]:
        """Weights keyed by operator name ("mutate-point", ...)."""
        return {f"mutate-{f.name}": getattr(self, f.name) for f in attrs.fields(MutationWeights)}

    def as_table(self) -> dict[str, float]:
        """Weights keyed by their short names ("point", ...), as a config file writes them."""
        return attrs.asdict(self)

    @staticmethod
    def from_mapping(weights: Mapping[str, float]) -> "MutationWeights":
        """From {"mutate-point": 1.0, ...} or {"point": 1.0, ...}; names left out keep their default.

        Unknown names raise ConfigError listing the known ones."""
        known = [f.name for f in attrs.fields(MutationWeights)]
        values = {}
        for key, value in weights.items():
            short = key[len("mutate-") :] if key.startswith("mutate-") else key
            if short not in known:
                raise ConfigError(
                    f"unknown mutation {key!r} in weights (known: {', '.join('mutate-' + k for k in known)})"
                )
            values[short] = value
        try:
            return MutationWeights(**values)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"mutation weights must be numbers: {exc}") from None
