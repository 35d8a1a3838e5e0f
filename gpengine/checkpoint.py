"""Atomic checkpoints of a search's state, written at the end of every generation.

Write to a temporary file, fsync, then rename over the old checkpoint: a reader
(or a resume after kill -9) sees either the old or the new state, never a torn
one. Individuals themselves live in the journal; the checkpoint holds what
the journal cannot rebuild: generator state, population and hall-of-fame
membership, the dedup memory and counters.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import attrs

try:
    import fcntl
except ImportError:  # not POSIX: no lock
    fcntl = None

from gpengine.config import LIMIT_KEYS, SearchConfig
from gpengine.errors import GpengineError, SaveError

CHECKPOINT = "checkpoint.pkl"
SEARCH_FILE = "search.json"
# Stopping limits changed by `gpengine resume --set`. Not written into search.json: that file is
# the search as it was started, and the one the running process holds its lock on (a rename over
# it would move the lock's file from under a second process).
LIMITS_FILE = "limits.json"
FORMAT = 1


def _atomic_write(path: Path, data: bytes) -> None:
    """SaveError when it cannot (disk full...): the old file is intact and no temporary one is left."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise SaveError(f"cannot write {path}: {exc.strerror or exc}") from None


def save_checkpoint(directory: Path, state: dict[str, Any]) -> None:
    _atomic_write(directory / CHECKPOINT, pickle.dumps({"format": FORMAT, **state}, protocol=pickle.HIGHEST_PROTOCOL))


def load_checkpoint(directory: Path) -> dict[str, Any] | None:
    path = directory / CHECKPOINT
    if not path.exists():
        return None
    try:
        state = pickle.loads(path.read_bytes())
    except Exception as exc:  # noqa: BLE001 - a damaged file is the user's problem to know about
        raise GpengineError(f"checkpoint {path} cannot be read ({type(exc).__name__}); "
                            "move it away to resume from the journal alone") from None
    if state.get("format") != FORMAT:
        raise GpengineError(f"checkpoint {path} has format {state.get('format')}, expected {FORMAT}")
    return state


def save_search_file(directory: Path, search_id: str, config: SearchConfig, options: dict[str, Any],
                     engine_version: str, resolved: dict[str, Any] | None = None) -> None:
    """`options` as the user gave them; `resolved`, what the evaluator made of them (informative only:
    a resume rebuilds the evaluator from `options`)."""
    data = {"search_id": search_id, "engine_version": engine_version,
            "config": attrs.asdict(config), "evaluator_options": options}
    if resolved is not None:
        data["evaluator_resolved"] = resolved
    _atomic_write(directory / SEARCH_FILE, json.dumps(data, indent=2, default=str).encode())


def load_search_file(directory: Path) -> tuple[str, SearchConfig, dict[str, Any]]:
    path = directory / SEARCH_FILE
    if not path.exists():
        raise GpengineError(f"no search at {directory} (missing {SEARCH_FILE})")
    try:
        data = json.loads(path.read_text())
        config = {**data["config"], **saved_limits(directory)}
        return data["search_id"], SearchConfig(**config), dict(data["evaluator_options"])
    except OSError as exc:  # a folder, no permission
        raise GpengineError(f"{path} cannot be read: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise GpengineError(f"{path} is damaged: {exc}") from None


def save_limits(directory: Path, config: SearchConfig) -> None:
    """Record `config`'s stopping limits as the search's own from now on (a resume that raised one)."""
    limits = {key: getattr(config, key) for key in LIMIT_KEYS}
    _atomic_write(directory / LIMITS_FILE, json.dumps(limits, indent=2).encode())


def saved_limits(directory: Path) -> dict[str, Any]:
    """The stopping limits a resume set ({} when none did); they override search.json's."""
    path = directory / LIMITS_FILE
    if not path.exists():
        return {}
    try:
        limits = json.loads(path.read_text())
    except OSError as exc:
        raise GpengineError(f"{path} cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise GpengineError(f"{path} is damaged: {exc}") from None
    if not isinstance(limits, dict) or not set(limits) <= set(LIMIT_KEYS):
        raise GpengineError(f"{path} is damaged: expected a table of {', '.join(LIMIT_KEYS)}")
    return limits


def lock_search(directory: Path):
    """Hold the search in `directory` for this process (an exclusive lock on its search.json, released
    when the returned file is closed or the process ends, kill -9 included).

    Two processes on one search (a `gpengine resume` of a search still running in another terminal)
    both appended to its journal: records written twice, and a later resume failed on them.
    None where locks are not to be had (no fcntl, a file system without them)."""
    if fcntl is None:
        return None
    try:
        fh = (directory / SEARCH_FILE).open("rb")
    except OSError:
        return None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise GpengineError(f"search in {directory} is running in another process; wait for it to end, or stop it "
                            "(Ctrl-C, kill) before resuming it") from None
    except OSError:  # no locks on this file system
        fh.close()
        return None
    return fh
