"""The search comparison's picture (tests/bench/bench_search_comparison.py --pool ... --plot):
the step curves it draws are what the saved searches held, and files tell variants apart."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).parent / "bench" / "bench_search_comparison.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_search_comparison", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(method, seed, traj, improved=()):
    return {"method": method, "seed": seed, "spent": traj[-1][0], "best": max(b for _, b in traj),
            "traj": traj, "improved": [list(i) for i in improved]}


def test_the_step_curve_holds_each_best_until_the_next_and_to_the_end(bench):
    row = _row("gaaf", 0, [(10.0, -math.inf), (30.0, 41.0), (50.0, 41.0), (80.0, 47.5), (120.0, 47.5)])
    xs, ys = bench.step_curve(row)
    assert xs == [30.0, 80.0, 80.0, 120.0]
    assert ys == [41.0, 41.0, 47.5, 47.5]


def test_a_search_with_nothing_at_full_fidelity_draws_nothing(bench):
    assert bench.step_curve(_row("tree-sh", 0, [(5.0, -math.inf), (9.0, -math.inf)]) | {"best": None}) == ([], [])


def test_two_files_with_the_same_method_and_seed_are_told_apart_by_file(bench, tmp_path):
    plain = [_row("tree-sh", 3, [(20.0, 45.0)]), _row("gaaf", 3, [(40.0, 48.0)])]
    prim = [_row("tree-sh", 3, [(25.0, 49.0)])]
    (tmp_path / "plain.json").write_text(json.dumps(plain))
    (tmp_path / "prim.json").write_text(json.dumps(prim))
    rows = bench.load_rows([str(tmp_path / "plain.json"), str(tmp_path / "prim.json")])
    labels = sorted(bench.curve_label(r, rows) for r in rows)
    assert labels == ["gaaf", "tree-sh (plain)", "tree-sh (prim)"]


def test_the_plot_is_a_png_with_one_panel_per_seed(bench, tmp_path):
    rows = [_row("gaaf", s, [(100.0, 40.0 + s), (900.0, 48.0)], [(100.0, 40.0 + s, "x"), (900.0, 48.0, "shift(x)")])
            for s in (0, 1, 2, 3)]
    rows += [_row("tree-sh", s, [(50.0, -math.inf), (200.0, 49.0)], [(200.0, 49.0, "shift(x)")]) for s in (0, 1)]
    out = bench.plot_pool(rows, str(tmp_path / "pool.png"))
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (3 * 520, 2 * 390)  # 4 seeds: 3 panels a line, 2 lines, 100 dpi
