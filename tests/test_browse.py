"""`gpengine show`, `lineage` and `ui`, and the tracker against a real `mlflow server`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from click.testing import CliRunner

from gpengine import browse
from gpengine.errors import GpengineError
from gpengine.tracking import MlflowTracker, readback, store
from tracking_stream import replay, synthetic_search

SERVER_TIMEOUT = 120  # seconds; MLflow's server imports a lot before it listens


def start_ui(uri: str, port: int) -> subprocess.Popen:
    """`gpengine ui`'s underlying function in a process of its own."""
    code = f"from gpengine.browse import serve; serve({uri!r}, '127.0.0.1', {port})"
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _read_until(pipe, text: str, timeout: float) -> str:
    """What `pipe` gives until `text` shows up (or `timeout` passes). Reads the file descriptor itself:
    the text wrapper's buffer would hide lines from `select`."""
    import select

    fd, seen, deadline = pipe.fileno(), b"", time.monotonic() + timeout
    while text.encode() not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk
    return seen.decode()


def start_remote(folder, port: int) -> subprocess.Popen:
    """A plain `mlflow server` with proxied artifacts, as a team would run one."""
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
           "--artifacts-destination", str(folder / "served-artifacts"),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    return subprocess.Popen(cmd, env=browse.server_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Both servers boot while the other tests run: MLflow's server takes seconds to start.

    Yields the logged store's URI, the two synthetic searches in it (the second is the
    latest), and the UI and remote servers' (process, url, folder).
    """
    remote_dir = tmp_path_factory.mktemp("remote")
    remote_port = free_port()
    remote = start_remote(remote_dir, remote_port)
    uri = "sqlite:///" + str(tmp_path_factory.mktemp("browse") / "runs" / "mlflow.db")
    store.client(uri).search_experiments()  # create the schema before a second process opens the file
    ui_port = free_port()
    ui = start_ui(uri, ui_port)
    first = synthetic_search(30, search_id="s-browse-1")
    second = synthetic_search(12, population=4, seed=3, search_id="s-browse-2")
    for start, gens, end, _ in (first, second):
        replay(MlflowTracker(uri, child_runs="all"), start, gens, end)
    yield {
        "uri": uri, "first": first, "second": second,
        "ui": (ui, f"http://127.0.0.1:{ui_port}", ui_port),
        "remote": (remote, f"http://127.0.0.1:{remote_port}", remote_dir),
    }
    kill_group(ui)
    kill_group(remote)


@pytest.fixture
def logged(servers):
    return servers["uri"], servers["first"], servers["second"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, payload: dict | None = None) -> dict:
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as r:
        return json.loads(r.read())


def kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def test_show_summarises_the_latest_or_a_named_search(logged):
    uri, (start, gens, end, inds), _ = logged
    runner = CliRunner()
    latest = runner.invoke(browse.show, ["--tracking-uri", uri])
    assert latest.exit_code == 0, latest.output
    assert "s-browse-2" in latest.output
    res = runner.invoke(browse.show, ["s-browse-1", "--tracking-uri", uri, "--top", "3"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "s-browse-1" in out and "gpengine/symreg" in out and "Downloading" not in out
    assert f"{end.best.fitness:.6g}" in out and str(end.best.expr) in out
    n_failed = sum(not i.result.ok for i in inds)
    assert f"failed {n_failed}" in out and f"ok {30 - n_failed}" in out
    n_cross = sum(i.operator == "crossover" for i in inds)
    assert f"crossover {n_cross}" in out
    assert "genealogy.html" in out and "lineage.csv" in out
    assert f"took {end.elapsed:.1f}s of search" in out  # the search's clock, not the run's start to end
    best_lines = [line for line in out.splitlines() if line.startswith("  ") and "#" in line]
    assert len(best_lines) == 3


def test_show_fails_clearly(logged, tmp_path):
    uri, *_ = logged
    res = CliRunner().invoke(browse.show, ["nope", "--tracking-uri", uri])
    assert res.exit_code != 0 and isinstance(res.exception, GpengineError)
    assert "no search 'nope'" in str(res.exception)
    empty = CliRunner().invoke(browse.show, ["--tracking-uri", "sqlite:///" + str(tmp_path / "none.db")])
    assert isinstance(empty.exception, GpengineError) and "no tracking store" in str(empty.exception)


def test_lineage_prints_the_ancestry_tree(logged):
    uri, (start, gens, end, inds), _ = logged
    by_id = {i.id: i for i in inds}
    res = CliRunner().invoke(browse.lineage, [str(end.best.id), "--search", "s-browse-1", "--tracking-uri", uri])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith(f"#{end.best.id} g{end.best.generation} {end.best.operator}")
    want, todo = set(), [end.best.id]
    while todo:
        i = todo.pop()
        if i not in want:
            want.add(i)
            todo.extend(by_id[i].parent_ids)
    shown = {int(line.split("#", 1)[1].split()[0]) for line in lines}
    assert shown == want
    assert any(line.startswith(("\u2514\u2500\u2500 ", "\u251c\u2500\u2500 ")) for line in lines[1:])
    shallow = CliRunner().invoke(browse.lineage, [str(end.best.id), "--search", "s-browse-1",
                                                  "--tracking-uri", uri, "--depth", "0"])
    assert len(shallow.output.splitlines()) == 2 and "more ancestors" in shallow.output
    bad = CliRunner().invoke(browse.lineage, ["999", "--search", "s-browse-1", "--tracking-uri", uri])
    assert isinstance(bad.exception, GpengineError)


def test_ui_serves_the_store_over_rest(servers):
    end = servers["first"][2]  # the first search's outcome
    proc, url, port = servers["ui"]
    try:
        assert browse.wait_until_up(url, proc, SERVER_TIMEOUT), "MLflow UI did not come up"
        exp = call(f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=gpengine%2Fsymreg")
        eid = exp["experiment"]["experiment_id"]
        found = call(f"{url}/api/2.0/mlflow/runs/search",
                     {"experiment_ids": [eid], "filter": "tags.`gp.search_id` = 's-browse-1'", "max_results": 1000})
        runs = found["runs"]
        kinds = [next(t["value"] for t in r["data"]["tags"] if t["key"] == "gp.kind") for r in runs]
        assert kinds.count("search") == 1 and kinds.count("individual") == 30
        search_run = runs[kinds.index("search")]["info"]["run_id"]
        query = urllib.parse.urlencode({"run_uuid": search_run, "path": "genealogy.html"})
        with urllib.request.urlopen(f"{url}/get-artifact?{query}", timeout=20) as r:
            page = r.read().decode()
        assert "gp-data" in page and f'"id":{end.best.id},' in page
        # serve() polls /health on its own every 0.25 s: stopping it before its poll saw the
        # server up would leave "ready" unprinted (a race of this test, not of the command)
        seen = _read_until(proc.stdout, "ready", SERVER_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # serve() stops its server group on SIGTERM
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        kill_group(proc)
    assert proc.returncode == 0, "serve() did not stop cleanly on SIGTERM"
    with socket.socket() as s:  # nothing listens on the port any more: no orphaned server
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
    output = seen + proc.stdout.read()  # returns only once every process holding the pipe is gone
    assert f"http://127.0.0.1:{port}" in output and "ready" in output


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_ui_server_stops_when_the_command_is_killed_outright(tmp_path):
    """SIGKILL gives serve() no chance to stop its server: the guard leading the server's group does."""
    uri = "sqlite:///" + str(tmp_path / "runs" / "mlflow.db")
    port = free_port()
    proc = start_ui(uri, port)
    try:
        assert "ready" in _read_until(proc.stdout, "ready", SERVER_TIMEOUT), "MLflow UI did not come up"
        os.kill(proc.pid, signal.SIGKILL)  # serve() alone; its server runs in a session of its own
        proc.wait()
        deadline, freed = time.monotonic() + 30, False
        while not freed and time.monotonic() < deadline:
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                    freed = True
                except OSError:
                    time.sleep(0.2)
        assert freed, "the MLflow server outlived `gpengine ui` and still holds the port"
    finally:
        kill_group(proc)


def test_ui_refuses_a_busy_port_and_a_server_uri(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(GpengineError, match="choose another --port"):
            browse.serve("sqlite:///" + str(tmp_path / "m.db"), "127.0.0.1", port)
    with pytest.raises(GpengineError, match="already a tracking server"):
        browse.serve("http://127.0.0.1:5000")
    cmd = browse.server_command("sqlite:////data/runs/mlflow.db", port=5001)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "5001"
    assert cmd[cmd.index("--default-artifact-root") + 1] == "file:///data/runs/artifacts"


def test_ui_refuses_a_store_mlflow_cannot_use_in_one_line_before_starting_a_server(tmp_path):
    from gpengine.cli import main

    (tmp_path / "junk.db").write_text("not a database\n")
    for uri, message in (("nosuch://host/x", "has an unknown scheme 'nosuch'"),
                         (f"sqlite:///{tmp_path / 'junk.db'}", "file is not a database")):
        res = CliRunner().invoke(main, ["ui", "--tracking-uri", uri, "--port", "1"])
        lines = res.output.strip().splitlines()
        assert res.exit_code == 2 and len(lines) == 1 and message in lines[0], res.output
        assert "MLflow UI for" not in res.output  # no server was started


def test_tracker_writes_to_a_remote_mlflow_server(servers):
    proc, remote, folder = servers["remote"]
    try:
        assert browse.wait_until_up(remote, proc, SERVER_TIMEOUT), "mlflow server did not come up"
        start, gens, end, inds = synthetic_search(12, population=4, search_id="s-remote")
        replay(MlflowTracker(remote, child_runs="all"), start, gens, end)

        client = store.client(remote, create=False)
        run = readback.find_search(client, "s-remote")
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied through the server
        for source in ("runs", "csv"):
            rows = readback.load_individuals(client, run, source=source)
            assert [(r["id"], r["parent_ids"], r["operator"], r["status"]) for r in rows] == [
                (i.id, i.parent_ids, i.operator, i.status) for i in inds]
        assert (folder / "served-artifacts").is_dir()
        res = CliRunner().invoke(browse.show, ["s-remote", "--tracking-uri", remote])
        assert res.exit_code == 0 and "s-remote" in res.output, res.output
    finally:
        kill_group(proc)


def test_reading_from_a_tracking_server_that_is_down_is_one_line_at_once(tmp_path):
    from gpengine.cli import main

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    for args in (["show"], ["lineage", "3"], ["report", "s-x"], ["export", "s-x"]):
        t0 = time.perf_counter()
        res = CliRunner().invoke(main, [*args, "--tracking-uri", uri])
        assert res.exit_code == 2 and res.output.strip().splitlines() == [
            f"error: tracking server {uri} is not reachable (Connection refused); start it or fix --tracking-uri"
        ], (args, res.output)
        assert time.perf_counter() - t0 < 15, f"{args}: MLflow's own retries take minutes"


@pytest.fixture(scope="module")
def look_alikes(tmp_path_factory):
    """A store of searches whose ids differ where LIKE's wildcards would match anything."""
    uri = "sqlite:///" + str(tmp_path_factory.mktemp("look-alikes") / "mlflow.db")
    for sid in ("bnn-cifar", "bnn-fmnist", "bnn_x", "a%b"):
        start, gens, end, _ = synthetic_search(4, population=4, search_id=sid)
        replay(MlflowTracker(uri, child_runs="notable"), start, gens, end)
    return uri


@pytest.mark.parametrize("prefix, says", [
    ("bnn_", "bnn_x"),  # `_` was LIKE's any-character: bnn-cifar and bnn-fmnist matched too
    ("a%", "a%b"),
    ("bnn-c", "bnn-cifar"),
    ("bnn", "error: search 'bnn' is ambiguous: bnn-cifar, bnn-fmnist, bnn_x"),
    ("%", "error: no search '%' in the tracking store"),  # matched every search
    ("_", "error: no search '_' in the tracking store"),
    ("", "error: the search id is empty: give a search id, a prefix of one, or a run id"),
])
def test_a_search_id_prefix_is_matched_literally(look_alikes, prefix, says):
    from gpengine.cli import main

    res = CliRunner().invoke(main, ["show", prefix, "--tracking-uri", look_alikes])
    if says.startswith("error:"):
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
        assert res.output.startswith(says), res.output
    else:
        assert res.exit_code == 0 and res.output.splitlines()[0].split() == ["search", says], res.output
