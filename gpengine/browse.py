"""Browse searches stored in MLflow: `gpengine ui`, `gpengine show`, `gpengine lineage`.

Plain click commands, registered on the main group by `gpengine.cli`. `show`
and `lineage` read from MLflow alone (`tracking.readback`), so they work on
any store a search wrote to, local or remote, without the engine's journal.
`ui` runs MLflow's own server on the local store: MLflow already has the UI
users need; gpengine only points it at the right database and artifacts, and
binds it to loopback unless asked otherwise.
"""

from __future__ import annotations

import collections
import datetime as _dt
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any, Sequence

import click

from gpengine import server_guard
from gpengine.errors import GpengineError

LOOPBACK = ("127.0.0.1", "localhost", "::1")

tracking_uri_option = click.option(
    "--tracking-uri",
    default=None,
    metavar="URI",
    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite under ./runs/).",
)


# ------------------------------------------------------------------- the UI server
def server_command(uri: str, host: str = "127.0.0.1", port: int = 5000) -> list[str]:
    """The `mlflow server` command line for a store (artifacts beside a SQLite database)."""
    from gpengine.tracking import store

    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
           "--host", host, "--port", str(port), "--workers", "1"]
    root = store.artifact_root(uri)
    if root is not None:
        cmd += ["--default-artifact-root", root.as_uri()]
    return cmd


def server_env() -> dict[str, str]:
    """MLflow 3's server also starts a job runner for GenAI features; a lineage browser
    does not need it and it doubles start-up time, so it is off unless the user set it."""
    env = dict(os.environ)
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return env


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: TIME_WAIT is no conflict
        try:
            s.bind((host, port))
        except OSError as exc:
            raise GpengineError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port") from None


def wait_until_up(url: str, proc: subprocess.Popen | None = None, timeout: float = 90.0) -> bool:
    """Poll the server's /health until it answers, the process dies, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.25)
    return False


def stop_server(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop the server and its worker processes (its guard leads a process group of their own)."""
    if proc.poll() is None:
        server_guard.stop_group(proc.pid, proc, grace)


def serve(tracking_uri: str | None = None, host: str = "127.0.0.1", port: int = 5000,
          echo=print, ready_timeout: float = 90.0) -> int:
    """Run the MLflow UI on the store until interrupted; returns the server's exit status.

    The server gets its own process group so that Ctrl-C, SIGTERM or SIGHUP
    here stops it and all its workers, and never leaves an orphan holding the port;
    `gpengine.server_guard` leads that group and stops it if this process is SIGKILLed.
    """
    from gpengine.tracking import store

    uri = store.resolve_uri(tracking_uri)
    if uri.startswith(("http://", "https://")):
        raise GpengineError(f"{uri} is already a tracking server: open it in a browser")
    # the store's folders created, and a URI or database MLflow cannot use refused in one line here: the
    # server would print its traceback and exit
    store.client(uri)
    _check_port(host, port)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    if host not in LOOPBACK:
        echo(f"warning: serving on {host}: anyone who can reach this machine can read and change the store")
    # the guard leads the server's group, and stops it if this process is killed outright
    guarded = [sys.executable, "-m", "gpengine.server_guard", str(os.getpid()), "--", *server_command(uri, host, port)]
    proc = subprocess.Popen(guarded, env=server_env(), start_new_session=True)
    echo(f"MLflow UI for {uri}\n  {url}   (starting; Ctrl-C to stop)")

    def _terminate(signum, frame):  # turn SIGTERM/SIGHUP into a clean stop below
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, _terminate) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        if wait_until_up(url, proc, ready_timeout):
            echo(f"  ready: {url}")
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_server(proc)
        for s, handler in previous.items():
            signal.signal(s, handler)


@click.command()
@tracking_uri_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (loopback unless you ask).")
@click.option("--port", "-p", default=5000, show_default=True, type=click.IntRange(1, 65535))
def ui(tracking_uri, host, port):
    """Start the MLflow UI on the local store and print its URL."""
    code = serve(tracking_uri, host, port, echo=click.echo)
    if code not in (0, None, -signal.SIGTERM):
        raise GpengineError(f"the MLflow server exited with status {code}")


# ----------------------------------------------------------------------- reading
def _open(tracking_uri: str | None, search: str | None):
    from gpengine.tracking import readback, store

    client = store.client(tracking_uri, create=False)
    return client, readback.find_search(client, search)


def _fit(row: dict[str, Any]) -> str:
    from gpengine.tracking.lineage import is_ok

    return f"{row['fitness']:.6g}" if is_ok(row) else row["status"] or "-"


def _when(ms: int | None) -> str:
    return _dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


def _counts(rows: Sequence[dict[str, Any]], key: str) -> str:
    c = collections.Counter(r[key] or "?" for r in rows)
    return ", ".join(f"{k} {v}" for k, v in c.most_common())


def summary_lines(client: Any, run: Any, rows: Sequence[dict[str, Any]], top: int = 10) -> list[str]:
    """The text of `gpengine show`."""
    from gpengine.tracking import readback
    from gpengine.tracking.lineage import standing

    s = readback.search_summary(run)
    exp = client.get_experiment(s["experiment_id"])
    wall = (s["end_time"] - s["start_time"]) / 1000 if s["end_time"] and s["start_time"] else None
    # The search's own clock: a resumed run's start and end times also span the time it lay stopped.
    searched = run.data.metrics.get("elapsed")
    if searched is not None:
        took = f", took {searched:.1f}s of search"
        if wall is not None and wall > searched + 60:
            took += f" ({wall:.0f}s from start to end, stops included)"
    else:
        took = f", took {wall:.1f}s" if wall is not None else ""
    n_runs = sum(1 for r in rows if r.get("run_id"))
    status = s["status"] + (f", ended by {s['end_reason']}" if s["end_reason"] else "")
    mode = f" (mode {s['child_runs']})" if s["child_runs"] else ""
    fields = [
        ("search", s["search_id"]),
        ("run", f"{s['run_id']}  (experiment {exp.name if exp else s['experiment_id']})"),
        ("status", status),
        ("started", _when(s["start_time"]) + took),
        ("individuals", f"{len(rows)}, {n_runs} with a child run{mode}"),
        ("by status", _counts(rows, "status")),
        ("by operator", _counts(rows, "operator")),
    ]
    lines = [f"{k:<12s}{v}" for k, v in fields] + ["best:"]
    ranked = standing(rows)[:top]
    if not ranked:
        lines.append("  (no individual with a fitness)")
    for r in ranked:
        lines.append(f"  {_fit(r):>12s}  #{r['id']:<6d} g{r['generation']:<4d} {r['operator']:<15s} {r['expr']}")
    lines.append(f"{'artifacts':<12s}{s['artifact_uri']}")
    try:
        names = [a.path for a in client.list_artifacts(s["run_id"])]
    except Exception:  # noqa: BLE001 - listing is a convenience
        names = []
    lines.append("  " + ("  ".join(names) if names else "(none yet: written when the search ends)"))
    return lines


@click.command()
@click.argument("search", required=False)
@tracking_uri_option
@click.option("--top", default=10, show_default=True, type=click.IntRange(1, None), help="How many best to list.")
def show(search, tracking_uri, top):
    """Summarise SEARCH (a search id, unique prefix or run id; default: the latest)."""
    from gpengine.tracking import readback

    client, run = _open(tracking_uri, search)
    rows = readback.load_individuals(client, run)
    for line in summary_lines(client, run, rows, top):
        click.echo(line)


def tree_lines(rows: Sequence[dict[str, Any]], root: int, max_depth: int | None = None) -> list[str]:
    """An individual's ancestry as a text tree; an ancestor reached twice is expanded once."""
    from gpengine.tracking.genealogy import Genealogy

    g = Genealogy(rows)
    if root not in g:
        raise GpengineError(f"no individual {root} in this search")

    def label(i: int) -> str:
        r = g.rows[i]
        return f"#{i} g{r['generation']} {r['operator']} {_fit(r)}  {r['expr']}"

    lines: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[int, str, str, int]] = [(root, "", "", 0)]  # id, connector, prefix for kids, depth
    while stack:
        i, connector, prefix, depth = stack.pop()
        missing = [p for p in g.rows[i]["parent_ids"] if p not in g]
        if i in seen and g.parents(i):
            lines.append(f"{connector}#{i} (ancestry shown above)")
            continue
        seen.add(i)
        lines.append(connector + label(i) + (f"  [parents not logged: {missing}]" if missing else ""))
        parents = g.parents(i)
        if max_depth is not None and depth >= max_depth and parents:
            lines.append(f"{prefix}\u2514\u2500\u2500 \u2026 ({len(g.ancestors(i, False))} more ancestors)")
            continue
        for k in range(len(parents) - 1, -1, -1):  # push in reverse: first parent printed first
            last = k == len(parents) - 1
            stack.append((parents[k], prefix + ("\u2514\u2500\u2500 " if last else "\u251c\u2500\u2500 "),
                          prefix + ("    " if last else "\u2502   "), depth + 1))
    return lines


@click.command()
@click.argument("individual", type=int)
@click.option("--search", default=None, help="Search id, unique prefix or run id (default: the latest).")
@tracking_uri_option
@click.option("--depth", default=None, type=click.IntRange(0, None), help="Stop after this many generations back.")
def lineage(individual, search, tracking_uri, depth):
    """Print the ancestry of INDIVIDUAL (its id in the search) as a tree."""
    from gpengine.tracking import readback

    client, run = _open(tracking_uri, search)
    rows = readback.load_individuals(client, run)
    for line in tree_lines(rows, individual, depth):
        click.echo(line)


__all__ = ["lineage", "serve", "server_command", "show", "stop_server", "ui", "wait_until_up"]
