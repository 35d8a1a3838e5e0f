"""Bounded per-primitive-set memos for pure functions of a tree (canonical form, fingerprint).

Crossover keeps proposing trees it has seen, so remembering results by tree pays.
A memo is kept per primitive set (the set object is held, so its id stays
unique), at most `max_sets` sets at once, each emptied when it reaches `limit`
entries so memory stays bounded in long searches.
"""

from __future__ import annotations

from typing import Any

from primitives.registry import PrimitiveSet


_ALL: list["SetMemo"] = []


def clear_all() -> None:
    """Empty every memo of this process (a benchmark's searches then each start cold)."""
    for memo in _ALL:
        memo._memos.clear()


class SetMemo:
    def __init__(self, limit: int = 100_000, max_sets: int = 8):
        self.limit = limit
        self.max_sets = max_sets
        self._memos: dict[int, tuple[PrimitiveSet, dict[Any, Any]]] = {}
        _ALL.append(self)

    def for_set(self, pset: PrimitiveSet) -> dict[Any, Any]:
        entry = self._memos.get(id(pset))
        if entry is None:
            if len(self._memos) >= self.max_sets:
                self._memos.clear()
            entry = self._memos[id(pset)] = (pset, {})
        if len(entry[1]) >= self.limit:
            entry[1].clear()
        return entry[1]
