"""Wire a search for the command line: config, listeners, run."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any, Iterable

from gpengine.config import build_config
from gpengine.evaluator import option_names
from gpengine.plugins import load_evaluator_class
from gpengine.progress import ProgressBar, expected_proposals
from gpengine.resume import same_shape
from gpengine.search import Search

DEFAULT_RUNS_DIR = "runs"  # `gpengine resume`'s --runs-dir default


def make_listeners(config, quiet: bool = False) -> list[Any]:
    """The CLI's own listeners: the progress bar. The MLflow tracker (config.tracking) is the
    search's own (gpengine.outputs), as it is for a search started from Python."""
    return [ProgressBar(total=expected_proposals(config), disable=quiet, max_time=config.max_time,
                        max_evaluations=config.max_evaluations, max_cost=config.max_cost)]


def search_from_cli(*, evaluator: str | None, config_file: str | None, overrides: Iterable[str],
                    quiet: bool = False, **explicit: Any) -> Search:
    """A new search, ready to run: the command line's choices checked, listeners attached."""
    # The evaluator's option names let a misspelt --set key fail now, naming both lists.
    name = evaluator
    if name is None and config_file is not None:
        from gpengine.config import evaluator_name_in, read_toml

        name = evaluator_name_in(read_toml(config_file))
    cls = load_evaluator_class(name) if name else None
    config, options = build_config(
        evaluator=evaluator, config_file=config_file, overrides=overrides,
        evaluator_option_names=option_names(cls.Options) if cls else None, **explicit,
    )
    return Search(config, options, listeners=make_listeners(config, quiet=quiet))


def resumed_search(search_id: str, *, runs_dir: str = DEFAULT_RUNS_DIR, jobs: int | None = None,
                   tracking_uri: str | None = None, quiet: bool = False,
                   limits: dict[str, Any] | None = None) -> Search:
    """A search restored from its journal and checkpoint, ready to run on; `limits` (from
    `resume.limit_overrides`) move where it stops, so a search that ended can go on."""
    from gpengine.checkpoint import load_search_file
    from gpengine.paths import search_dir

    _, config, _ = load_search_file(search_dir(runs_dir, search_id))
    overrides: dict[str, Any] = dict(limits or {})
    if jobs is not None:  # another -j runs the same search (Search.resume pins its shape)
        overrides.update(same_shape(config), jobs=jobs)
    if tracking_uri is not None:
        overrides["tracking_uri"] = tracking_uri
    import attrs

    listeners = make_listeners(attrs.evolve(config, **overrides), quiet=quiet)
    return Search.resume(search_id, runs_dir=runs_dir, listeners=listeners, overrides=overrides)


def resume_command(search: Search) -> str:
    """The command that continues `search`, typed from the folder it was started in."""
    folder = search.run_dir.name if search.run_dir is not None else search.search_id  # renamed: its name
    command = f"gpengine resume {shlex.quote(folder)}"
    runs_dir = str(search.config.runs_dir)
    if Path(runs_dir) != Path(DEFAULT_RUNS_DIR):  # `resume` looks in runs/ unless told
        command += f" --runs-dir {shlex.quote(runs_dir)}"
    return command


def go_on_hint(search: Search, reason: str) -> str | None:
    """For a resume that found its search already ended: the command that moves the limit it ended
    by (None where no limit ended it: exhausted, failed...)."""
    cfg = search.config
    raised = {
        "generations": f"generations={cfg.generations + max(1, cfg.generations)}",
        "time": f"max_time={2 * cfg.max_time:g}" if cfg.max_time else None,
        "evaluations": f"max_evaluations={2 * cfg.max_evaluations}" if cfg.max_evaluations else None,
        "cost": f"max_cost={2 * cfg.max_cost:g}" if cfg.max_cost else None,
        "target": "target_fitness=none",
    }.get(reason)
    if raised is None:
        return None
    return f"it had already ended ({reason}); to go on: {resume_command(search)} --set {raised}"


def saved_where(search: Search) -> str:
    """Where the search keeps what it needs to resume, and how: one line's end."""
    if search.run_dir is None:
        return "no journal (journal=false): it cannot be resumed"
    return f"journal and checkpoint in {search.run_dir}{os.sep} ({resume_command(search)})"


def started_line(search: Search) -> str:
    return f"search {search.search_id}: {saved_where(search)}"


def interrupted_line(search: Search) -> str:
    if search.run_dir is None:
        return f"search {search.search_id} interrupted: no journal (journal=false), nothing to resume from"
    n = len(search.individuals)
    return (f"search {search.search_id} interrupted: {n} evaluated individual{'s' if n != 1 else ''} saved in "
            f"{search.run_dir}{os.sep}; continue with: {resume_command(search)}")
