"""A remote MLflow server stops and restarts mid-search: the search goes on, nothing is lost."""

from __future__ import annotations

import threading
import time

import pytest

from gpengine import browse
from gpengine.config import build_config
from gpengine.search import Search
from gpengine.tracking import MlflowTracker, store
from gpengine.tracking.readback import find_search, load_individuals
from test_browse import SERVER_TIMEOUT, free_port, kill_group, start_remote


@pytest.mark.slow
def test_server_outage_mid_search_loses_nothing(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_remote(tmp_path, port)
    try:
        assert browse.wait_until_up(url, server, SERVER_TIMEOUT), "mlflow server did not come up"
        cfg, opts = build_config(
            evaluator="faults",
            overrides=["population=10", "generations=6", "delay=0.1", "child_runs=all"],
            seed=2,
        )
        search = Search(cfg, opts, listeners=[MlflowTracker(url, child_runs="all")])
        outcome = {}
        runner = threading.Thread(target=lambda: outcome.setdefault("o", search.run()))
        runner.start()
        while len(search.individuals) < 15 and runner.is_alive():
            time.sleep(0.05)
        kill_group(server)  # the server dies mid-search ...
        down_at = len(search.individuals)
        time.sleep(3.0)
        assert runner.is_alive() and len(search.individuals) > down_at, "the search must go on during the outage"
        server = start_remote(tmp_path, port)  # ... and comes back on the same store
        assert browse.wait_until_up(url, server, SERVER_TIMEOUT)
        runner.join(timeout=300)
        assert "o" in outcome, "search did not finish"
        client = store.client(url, create=False)
        rows = load_individuals(client, find_search(client, search.search_id), source="runs")
        assert sorted(int(r["id"]) for r in rows) == [i.id for i in outcome["o"].individuals]
    finally:
        kill_group(server)
