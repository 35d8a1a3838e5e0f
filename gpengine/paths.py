"""Where gpengine keeps files: the runs folder of a search, and the user cache."""

from __future__ import annotations

import os
from pathlib import Path

from gpengine.errors import GpengineError


def cache_dir() -> Path:
    """$GPENGINE_CACHE, else $XDG_CACHE_HOME/gpengine, else ~/.cache/gpengine."""
    if os.environ.get("GPENGINE_CACHE"):
        return Path(os.environ["GPENGINE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gpengine"


def search_dir(runs_dir: str | Path, search_id: str, create: bool = False) -> Path:
    path = Path(runs_dir) / search_id
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise GpengineError(f"cannot write to runs folder {path}: {exc.strerror or exc}") from None
    return path


def write_output(path: str | Path, text: str) -> Path:
    """Write a file the user named (`--out` of export and report); one line when it cannot be written."""
    path = Path(path)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:  # a missing folder, a file where a folder belongs, no permission
        raise GpengineError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
