"""The `gpengine` command line: a thin click layer over the library.

Every command parses its arguments, builds library objects and calls them;
anything it can do, Python code can do with the same objects. User errors
(`GpengineError`) print one line and exit with status 2; Ctrl-C during a
search (or SIGTERM, SIGHUP) prints how to resume it and exits with status 130 (143, 129).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import warnings

import click

from gpengine.config import BACKENDS
from gpengine.errors import GpengineError, GpengineWarning, SaveError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's 128 + SIGINT, what scripts test for after Ctrl-C
# click 8.2+ raises it, a UsageError whose message is the whole help, for a bare `gpengine`;
# click 8.1 prints the help and exits 0 instead
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _usage_line(exc: click.UsageError) -> str:
    """click's usage error as one line: its message and where the help is.

    click prints four (a usage line, a hint, a blank line, the error); a user looking
    for what went wrong, or a script grepping stderr, wants the error alone.
    """
    path = exc.ctx.command_path if exc.ctx is not None else "gpengine"
    message = exc.format_message()
    if not message.endswith((".", "?", "!")):  # "Got unexpected extra argument (x)" has no full stop
        message += "."
    return f"error: {message} See '{path} --help'."


class GpengineGroup(click.Group):
    """Turns user errors, ours and click's usage errors alike, into one clear line and exit status 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:  # the group's own options: `gpengine --bogus`
            return super().parse_args(ctx, args)
        except _NO_ARGS_IS_HELP:  # a bare `gpengine` (click >= 8.2): the help as it is, exit 2, not "error: Usage: ..."
            raise
        except click.UsageError as exc:
            click.echo(_usage_line(exc), err=True)
            raise click.exceptions.Exit(EXIT_USAGE) from None

    def invoke(self, ctx: click.Context):
        try:  # an unknown command, and each command's arguments, are parsed in here
            return super().invoke(ctx)
        except GpengineError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)
        except click.UsageError as exc:
            click.echo(_usage_line(exc), err=True)
            ctx.exit(EXIT_USAGE)
        except KeyboardInterrupt:  # Ctrl-C before a search started (loading data, building the evaluator):
            click.echo("interrupted", err=True)  # nothing to save; click's own "Aborted!" exited 1
            ctx.exit(EXIT_INTERRUPTED)


_python_showwarning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our own warnings (`GpengineWarning`) as one line, like errors; anyone else's as Python shows them."""
    if issubclass(category, GpengineWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


@click.group(cls=GpengineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gpengine")
def main() -> None:
    """Genetic programming over expression trees with pluggable fitness evaluators."""
    warnings.showwarning = _show_warning


set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a search key or an evaluator option (repeatable).",
)


@main.command()
@click.option("--evaluator", "-e", help="Evaluator plugin name (see `gpengine evaluators`).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML configuration file.")
@set_option
@click.option("--seed", type=int, help="Search seed (same seed, same search).")
@click.option("--jobs", "-j", type=int, help="Evaluations run at once.")
@click.option("--backend", type=click.Choice(BACKENDS), help="Where evaluations run.")
@click.option("--scheduler", help="Dask scheduler address, tcp://HOST:PORT (with --backend dask).")
@click.option("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite under runs/).")
@click.option("--no-tracking", is_flag=True, help="Do not write to MLflow.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def run(evaluator, config_file, overrides, seed, jobs, backend, scheduler, tracking_uri, no_tracking, quiet):
    """Run a search."""
    from gpengine.runner import search_from_cli

    # --no-tracking only ever turns tracking off; without it, `tracking` in the config file or --set decides
    search = search_from_cli(
        evaluator=evaluator, config_file=config_file, overrides=overrides, seed=seed, jobs=jobs,
        backend=backend, scheduler=scheduler, tracking_uri=tracking_uri, tracking=False if no_tracking else None,
        quiet=quiet,
    )
    _drive(search, quiet)


@main.command()
@click.argument("search_id")
@click.option("--runs-dir", default="runs", show_default=True, help="Folder holding the search's journal.")
@click.option("--jobs", "-j", type=int, help="Evaluations run at once (may differ from the original run).")
@click.option("--tracking-uri", help="MLflow tracking URI (default: as the original run).")
@click.option("--set", "limits", multiple=True, metavar="KEY=VALUE",
              help="Move where the search stops (generations, max_time, max_evaluations, max_cost, "
                   "target_fitness; 'none' lifts one), so a search that ended goes on (repeatable).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def resume(search_id, runs_dir, jobs, tracking_uri, limits, quiet):
    """Continue SEARCH_ID (or its folder, runs/ID) after a crash or kill, or past the limit it ended by.

    Nothing evaluated is lost or run twice. A search that ended by its generations or its time
    goes on with a higher limit: `gpengine resume ID --set generations=10`.
    """
    from pathlib import Path

    from gpengine.checkpoint import SEARCH_FILE
    from gpengine.resume import limit_overrides
    from gpengine.runner import resumed_search

    folder = Path(search_id)  # the folder as `run` prints it ("journal and checkpoint in runs/ID/"), tab-completed
    if not (Path(runs_dir) / search_id / SEARCH_FILE).exists() and (folder / SEARCH_FILE).exists():
        runs_dir, search_id = str(folder.parent), folder.name

    _drive(resumed_search(search_id, runs_dir=runs_dir, jobs=jobs, tracking_uri=tracking_uri, quiet=quiet,
                          limits=limit_overrides(limits)), quiet)


def _drive(search, quiet: bool) -> None:
    """Run `search` from the shell: say where it saves, and on Ctrl-C how to continue it.

    The search id is printed first, so nobody has to guess which folder to resume.
    """
    from gpengine.runner import interrupted_line, started_line

    if not quiet:
        click.echo(started_line(search), err=True)
    before = len(search.individuals)  # resumed: what it had already made
    try:
        with _interrupt_notice(search, quiet):
            outcome = search.run()
    except KeyboardInterrupt as exc:
        with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
            click.echo(interrupted_line(search), err=True)
        sys.exit(128 + exc.signum if isinstance(exc, Terminated) else EXIT_INTERRUPTED)
    except SaveError as exc:  # disk full, folder gone: what was written is intact
        from gpengine.runner import resume_command

        click.echo(f"error: {exc}; search {search.search_id} stopped, what it saved before is intact: "
                   f"continue with: {resume_command(search)}", err=True)
        sys.exit(EXIT_USAGE)
    _print_summary(search, outcome)
    if search.finished is not None and len(outcome.individuals) == before:
        from gpengine.runner import go_on_hint

        hint = go_on_hint(search, outcome.reason)
        if hint is not None:  # a resume of a search that had ended: say how to make it go on
            click.echo(f"search {search.search_id}: {hint}", err=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (`kill`, `timeout`, a job scheduler, a closed terminal) during a search:
    stopped as Ctrl-C stops it, and the exit status is the shell's 128 + the signal's number."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: signals that stop a search as Ctrl-C does (default action: die at once, saying nothing, the
#: workers' semaphores reported leaked and the MLflow run left RUNNING)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _interrupt_notice(search, quiet: bool):
    """On Ctrl-C (or SIGTERM, SIGHUP), say at once that the search is stopping: killing the workers,
    writing the checkpoint and closing the MLflow run take seconds, which looked like a hang.

    A second Ctrl-C interrupts that wait; the journal already holds every finished evaluation.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may handle signals (and gets SIGINT)
        return
    # a signal started ignored (nohup: SIGHUP; a background job: SIGINT) stays ignored
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    handled = [s for s in STOP_SIGNALS if previous[s] is not signal.SIG_IGN]
    name = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated (SIGTERM)", signal.SIGHUP: "hung up (SIGHUP)"}

    def on_signal(signum, frame):
        for s in handled:  # the next one, of any kind, quits at once
            signal.signal(s, previous[s])
        notice = ("" if quiet else "\n") + (  # off the progress bar's line
            f"{name[signum]}: stopping the evaluations and saving search {search.search_id} "
            "(a few seconds; Ctrl-C again to quit at once)\n")
        # os.write, not click.echo: the handler may run while the progress bar is writing
        # to sys.stderr, and a buffered writer refuses a re-entrant write.
        with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
            os.write(2, notice.encode())
        raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)

    for s in handled:
        signal.signal(s, on_signal)
    try:
        yield
    finally:
        for s in handled:
            signal.signal(s, previous[s])


def _print_summary(search, outcome) -> None:
    from gpengine.runner import saved_where

    n = len(outcome.individuals)
    cached = sum(i.cached for i in outcome.individuals)
    failed = sum(1 for i in outcome.individuals if not i.result.ok)
    click.echo(f"search {outcome.search_id}: stopped by {outcome.reason} after {outcome.elapsed:.1f}s; "
               f"{n} individuals ({cached} answered from cache, {failed} failed or rejected)")
    click.echo("best:")
    for ind in outcome.hall_of_fame[:5]:
        click.echo(f"  {ind.fitness:12.6g}  id {ind.id:<6d} {ind.expr}")
    click.echo(saved_where(search))


@main.command()
def evaluators():
    """List installed evaluator plugins."""
    from gpengine.plugins import evaluator_names, load_evaluator_class

    names = evaluator_names()
    width = max([14, *map(len, names)])  # a long plugin name must not run into its description
    for name in names:
        try:
            cls = load_evaluator_class(name)
            desc = cls.description
        except GpengineError as exc:
            desc = f"(broken: {exc})"
        click.echo(f"{name:{width}s} {desc}")


@main.command()
@click.argument("set_name", required=False)
def primitives(set_name):
    """List primitive sets, or the primitives of SET_NAME."""
    from primitives import get_set, set_names

    if set_name is None:
        for name in set_names():
            pset = get_set(name)
            click.echo(f"{name:10s} {len(pset):3d} primitives  {pset.description}")
        return
    pset = get_set(set_name)
    for prim in sorted(pset, key=lambda p: (p.arity, p.name)):
        extra = []
        if prim.commutative:
            extra.append("commutative")
        if prim.params:
            extra.append("learnable " + ", ".join(f"{p.name}={p.init:g}" for p in prim.params))
        click.echo(f"{prim.name:10s} arity {prim.arity}  {prim.doc}" + (f"  [{'; '.join(extra)}]" if extra else ""))


# Commands that live beside the concept they serve; each module exposes click commands.
COMMAND_MODULES = {
    "gpengine.browse": ("ui", "show", "lineage"),
    "gpengine.evaluate_cmd": ("evaluate",),
    "gpengine.export": ("export",),
    "gpengine.report": ("report",),
    "gpengine.plugin_tools": ("new_evaluator", "check_evaluator"),
}


def _register_commands() -> None:
    """Add the commands of COMMAND_MODULES; a module or command missing is a packaging bug and fails here."""
    import importlib

    for module_name, names in COMMAND_MODULES.items():
        module = importlib.import_module(module_name)
        for name in names:
            cmd = getattr(module, name)
            if not isinstance(cmd, click.Command):
                raise TypeError(f"{module_name}.{name} is not a click command")
            main.add_command(cmd, name.replace("_", "-"))


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
