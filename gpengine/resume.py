"""Resume: what a saved search is continued from.

A search's folder holds its configuration (search.json), every record it made
(the append-only journal) and its state at the end of the last generation (the
checkpoint, gpengine.checkpoint). A resume rebuilds the search from search.json,
with the overrides a user may give (`jobs`, `tracking_uri`...), and hands it the
journal and the checkpoint: `Search.resume` restores its state from them and
replays the records journaled after the checkpoint instead of running them again,
so the resumed search is record for record the uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import attrs

from gpengine.checkpoint import load_checkpoint, load_search_file
from gpengine.config import LIMIT_KEYS, SearchConfig, parse_assignment
from gpengine.errors import ConfigError, GpengineError
from gpengine.individual import Individual
from gpengine.journal import JOURNAL, read_journal


def saved_config(directory: Path, runs_dir: str, overrides: dict[str, Any] | None = None,
                 ) -> tuple[str, SearchConfig, dict[str, Any]]:
    """(search id, configuration with `overrides`, evaluator options) of the search in `directory`.

    Another `jobs` keeps the search's shape (`same_shape`)."""
    sid, config, options = load_search_file(directory)
    overrides = dict(overrides or {})
    if "jobs" in overrides:
        overrides = {**same_shape(config), **overrides}
    return sid, attrs.evolve(config, runs_dir=str(runs_dir), **overrides), options


def limit_overrides(items: Iterable[str]) -> dict[str, Any]:
    """`gpengine resume --set KEY=VALUE`: new stopping limits, `none` lifting one.

    Only where the search stops may change: its records were made under the rest of its
    configuration, and a resume with another population or strategy would be another search
    written into this one's journal."""
    limits: dict[str, Any] = {}
    for item in items:
        key, value = parse_assignment(item)
        if key not in LIMIT_KEYS:
            raise ConfigError(f"resume --set {key}: a resume may change only where the search stops "
                              f"({', '.join(LIMIT_KEYS)}); for another {key}, start a new search")
        if isinstance(value, str) and value.strip().lower() == "none":
            if key == "generations":
                raise ConfigError("resume --set generations=none: generations needs a number; to run on "
                                  "without a generation count, set a large one and a max_time")
            value = None
        limits[key] = value
    return limits


def saved_progress(directory: Path) -> tuple[list[Individual], dict[str, Any] | None]:
    """The journal (a torn last line cut) and the last checkpoint (None: none was written yet)
    of the search in `directory`; a journal whose record ids are not 0, 1, 2... is refused."""
    journal = read_journal(directory / JOURNAL, repair=True)
    for k, ind in enumerate(journal):  # else a KeyError in the restore, or a search rebuilt from the wrong records
        if ind.id != k:
            raise GpengineError(f"journal {directory / JOURNAL} is damaged: its record {k + 1} has id {ind.id}, "
                                f"expected {k} (records written twice or lost)")
    return journal, load_checkpoint(directory)


def same_shape(cfg: SearchConfig) -> dict[str, int]:
    """The keys that keep a search's shape when it resumes with another `jobs`.

    Steady state breeds `jobs` children per batch (unless `offspring` is set) and async keeps
    `jobs` proposals in flight (unless `async_window` is set), so the number of workers shapes
    the search there. Pinning those keys to the original `jobs` makes the resumed search exactly
    the uninterrupted one, running on as many workers as the resume asks for: what a user who
    resumes on another machine wants, rather than a refusal or a different search.
    """
    if cfg.mode == "async" and cfg.async_window is None:
        return {"async_window": cfg.jobs}
    if cfg.mode == "steady_state" and cfg.strategy != "gaaf" and cfg.offspring is None:
        return {"offspring": max(1, cfg.jobs)}
    return {}


__all__ = ["limit_overrides", "saved_config", "saved_progress", "same_shape"]
