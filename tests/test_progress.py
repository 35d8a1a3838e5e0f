"""The progress bar: proposals done, ETA, best so far, on a terminal, a sizeless pty and a file."""

from __future__ import annotations

import io
import os
import select
import sys
from types import SimpleNamespace

import pytest

from gpengine.events import GenerationEnded, GenerationStats, IndividualEvaluated, SearchEnded, SearchStarted
from gpengine.progress import ProgressBar, expected_proposals


def _drive(bar: ProgressBar, fitnesses: list[float]) -> None:
    bar.on_search_start(SearchStarted(search_id="s", evaluator="toy", evaluator_version="1",
                                      engine_version="0", config={}, seed=0))
    for k, fit in enumerate(fitnesses):
        # The bar reads only these three fields of an individual.
        ind = SimpleNamespace(fitness=fit, expr=f"x + {k}", cached=k % 2)
        bar.on_individual(IndividualEvaluated(ind))
    bar.on_generation(GenerationEnded(GenerationStats(generation=1, best=max(fitnesses), mean=0.0,
                                                      median=0.0, diversity=1.0, evaluations=3,
                                                      failures=0, cost=0.0)))
    bar.bar.refresh()
    bar.on_search_end(SearchEnded(best=None, hall_of_fame=(), reason="generations", elapsed=1.0))


def _read_all(fd: int) -> str:
    chunks = []
    while select.select([fd], [], [], 0.2)[0]:
        try:
            data = os.read(fd, 65536)
        except OSError:  # the other end closed
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def test_the_bar_shows_count_best_and_cache_hits_in_a_file():
    out = io.StringIO()
    _drive(ProgressBar(total=10, stream=out), [0.1, 0.7, 0.3])
    text = out.getvalue()
    assert "3/10" in text
    assert "gen 1 best 0.7 [x + 1] cached 1" in text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pty sizes as Linux reports them")
def test_a_pty_that_reports_zero_columns_still_shows_the_bar(monkeypatch):
    # `script`, some CI runners and container shells give a pty nobody sized: 0 x 0.
    # tqdm's dynamic width then draws nothing at all, so an hour-long search looked dead.
    monkeypatch.setenv("COLUMNS", "90")
    master, slave = os.openpty()
    assert os.get_terminal_size(slave).columns == 0  # the premise: a fresh pty has no size
    stream = os.fdopen(slave, "w", buffering=1)
    # tqdm asks the terminal for its size only when it writes to sys.stderr or sys.stdout itself.
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        _drive(ProgressBar(total=10), [0.1, 0.7, 0.3])
        stream.flush()
        text = _read_all(master)
    finally:
        stream.close()
        os.close(master)
    lines = [line for line in text.replace("\r", "\n").split("\n") if line.strip()]
    assert any("3/10" in line and "best 0.7" in line for line in lines), text
    assert max(len(line) for line in lines) <= 90  # the width from $COLUMNS


def test_the_total_counts_the_first_population_and_each_generations_children():
    assert expected_proposals(population=12, generations=3, elitism=1) == 12 + 3 * 11
    assert expected_proposals(population=1, generations=2, elitism=5) == 1 + 2  # at least one child
