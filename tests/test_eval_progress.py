"""Progress of one evaluation: reports reach a listener only where one listens; `gpengine evaluate` draws them."""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner
from hypothesis import given, strategies as st

from evaluators.bnn_cifar import BnnCifar
from gpengine.cli import main
from gpengine.eval_progress import listening, progress_bar, report_progress
from gpengine.expr_text import parse
from tests.bnn_fakes import write_fake_cifar

TINY = dict(profile="smoke", width=4, epochs=2, train_size=192, val_size=100, batch_size=64, threads=1,
            abort="off", device="cpu")  # 3 steps of 64 an epoch


def test_without_a_listener_a_report_does_nothing_and_a_listener_gets_every_report_in_its_block():
    report_progress(1, 2, epoch="1/2")  # nobody listens: nothing to fail
    got, outer = [], []
    with listening(lambda *a: outer.append(a)):
        with listening(lambda *a: got.append(a)):
            report_progress(1, 4, unit="epoch", loss=0.5)
        report_progress(2, 4)
    report_progress(3, 4)
    assert got == [(1, 4, "epoch", {"loss": 0.5})]
    assert outer == [(2, 4, "step", {})]


def test_the_bar_appears_at_the_first_report_shows_the_count_and_info_and_starts_over_for_a_new_run():
    silent = io.StringIO()
    with progress_bar("quiet one", stream=silent):
        pass
    assert silent.getvalue() == ""  # an evaluator that reports nothing draws nothing
    out = io.StringIO()
    with progress_bar("x", stream=out, min_interval=0):  # every report drawn
        report_progress(3, 3, run="floor")
        report_progress(1, 6, epoch="1/2", loss=2.25)  # fewer done than before: a second run
        report_progress(6, 6, epoch="2/2", loss=1.5, val="40.00%")
    frames = out.getvalue().replace("\r", "\n").split("\n")
    assert any("3/3" in f and "run floor" in f for f in frames)
    assert any("0/6" in f and "epoch 1/2, loss 2.25" in f and "floor" not in f for f in frames)  # the reset
    assert "6/6" in frames[-2] and "epoch 2/2, loss 1.5, val 40.00%" in frames[-2]  # then the closing newline


@given(steps=st.lists(st.integers(0, 50), min_size=1, max_size=20))
def test_whatever_the_order_of_reports_the_bar_ends_on_the_last_one(steps):
    out = io.StringIO()
    with progress_bar("x", stream=out):
        for k in steps:
            report_progress(k, 50)
    last = out.getvalue().replace("\r", "\n").split("\n")
    assert any(f"{steps[-1]}/50" in f for f in last[-3:])


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_fake_cifar(root, per_batch=60, n_test=50)
    return root


def test_bnn_training_reports_each_step_check_and_each_validation(fake_root, monkeypatch):
    monkeypatch.setattr("evaluators.bnn_cifar.train.CHECK_EVERY", 2)
    ev = BnnCifar(**{**TINY, "data_dir": str(fake_root)})
    got = []
    with listening(lambda done, total, unit, info: got.append((done, total, dict(info)))):
        r = ev.evaluate(parse("x"), seed=0)
    assert r.status == "ok"
    assert {total for _, total, _ in got} == {6}  # 2 epochs of 3 steps
    done = [d for d, _, _ in got]
    assert done == sorted(done) and done[0] == 0 and done[-1] == 6
    # every other step, each epoch's last one, and after each validation (the smoke profile validates both)
    assert done == [0, 2, 3, 3, 5, 6, 6]
    assert got[2][2] == {"epoch": "1/2", "loss": pytest.approx(got[2][2]["loss"])}
    assert got[3][2]["val"] == f"{r.curves['val_accuracy'][0]:.2f}%"
    assert got[-1][2]["epoch"] == "2/2" and got[-1][2]["val"] == f"{r.fitness:.2f}%"


def test_the_abort_floors_run_is_named_in_its_reports(fake_root, monkeypatch, tmp_path):
    monkeypatch.setenv("GPENGINE_CACHE", str(tmp_path / "cache"))
    ev = BnnCifar(**{**TINY, "data_dir": str(fake_root), "abort": "on"})
    got = []
    with listening(lambda done, total, unit, info: got.append((done, total, dict(info)))):
        ev.evaluate(parse("x"), seed=0)
    floor = [g for g in got if "run" in g[2]]
    assert floor and all(g[1] == 3 and g[2]["run"].startswith("abort floor") for g in floor)  # its one epoch
    assert got.index(floor[-1]) == len(floor) - 1  # measured first, then the candidate, unnamed
    assert got[-1][1] == 6 and "run" not in got[-1][2]


def test_gpengine_evaluate_draws_the_bar_on_stderr_and_keeps_stdout_for_the_result(fake_root):
    args = ["evaluate", "x", "-e", "bnn-cifar", "--set", f"data_dir={fake_root}", "--set", "profile=smoke",
            "--set", "width=4", "--set", "train_size=192", "--set", "val_size=100", "--set", "device=cpu",
            "--set", "abort=off", "--json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("{") and res.stdout.count("\n") == 1  # the JSON alone
    assert "step/s" in res.stderr or "steps" in res.stderr or "/6" in res.stderr
    assert "epoch 2/2" in res.stderr
    quiet = CliRunner().invoke(main, [*args, "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    same = ("fitness", "curves")  # the same evaluation, timings aside
    assert {k: json.loads(quiet.stdout)[k] for k in same} == {k: json.loads(res.stdout)[k] for k in same}
