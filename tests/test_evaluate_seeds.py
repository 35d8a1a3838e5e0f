"""`gpengine evaluate --seed A --seed B ...`: each seed's result, then their mean and spread."""

from __future__ import annotations

import json
import math
import statistics

import pytest
from click.testing import CliRunner

from gpengine.cli import main
from gpengine.evaluate_cmd import spread
from gpengine.evaluator import Result
from tests.bnn_fakes import write_fake_cifar


@pytest.fixture(scope="module")
def bnn_args(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_fake_cifar(root, per_batch=60, n_test=50)
    opts = dict(data_dir=root, profile="smoke", width=4, epochs=1, train_size=192, val_size=100, device="cpu",
                abort="off", compile="off", threads=1)
    return ["evaluate", "x", "-e", "bnn-cifar", "-q", *[a for k, v in opts.items() for a in ("--set", f"{k}={v}")]]


def _run(args):
    res = CliRunner().invoke(main, args)
    return res.exit_code, res.stdout


def test_several_seeds_give_each_seeds_own_evaluation_and_their_mean_and_sample_sd(bnn_args):
    code, out = _run([*bnn_args, "--seed", "3", "--seed", "1", "--seed", "2", "--json"])
    assert code == 0
    got = json.loads(out)
    assert [r["seed"] for r in got["results"]] == [3, 1, 2]  # in the order given
    alone = {s: json.loads(_run([*bnn_args, "--seed", str(s), "--json"])[1])["fitness"] for s in (1, 2, 3)}
    fits = [r["fitness"] for r in got["results"]]
    assert fits == [alone[3], alone[1], alone[2]]  # the very evaluation a single --seed gives
    assert len(set(fits)) > 1  # seeds differ, so the spread is a real one
    assert got["measured"] == 3
    assert got["fitness_mean"] == pytest.approx(statistics.fmean(fits))
    assert got["fitness_sd"] == pytest.approx(statistics.stdev(fits))
    code, text = _run([*bnn_args, "--seed", "3", "--seed", "1", "--seed", "2"])
    lines = text.splitlines()
    assert lines[0] == "expr     x" and lines[1].startswith("data     CIFAR-10 (validation split)")
    assert [ln.split()[:3] for ln in lines[2:5]] == [["seed", "3", "ok"], ["seed", "1", "ok"], ["seed", "2", "ok"]]
    assert [float(ln.split()[3]) for ln in lines[2:5]] == pytest.approx(fits)
    assert lines[5] == (f"fitness  {statistics.fmean(fits):.6g} +- {statistics.stdev(fits):.3g} "
                        f"(mean +- sample sd over 3 seeds; range {min(fits):.6g} to {max(fits):.6g})")
    assert lines[6].startswith("cost     ")


def test_one_seed_prints_as_before_and_a_repeated_seed_is_one_evaluation(bnn_args):
    code, once = _run([*bnn_args, "--seed", "1", "--json"])
    assert code == 0 and "results" not in json.loads(once) and json.loads(once)["status"] == "ok"
    code, twice = _run([*bnn_args, "--seed", "1", "--seed", "1", "--json"])
    assert code == 0 and "results" not in json.loads(twice)
    assert json.loads(twice)["fitness"] == json.loads(once)["fitness"]


def test_failed_seeds_are_listed_left_out_of_the_mean_and_exit_1():
    args = ["evaluate", "cos(x)", "-e", "faults", "--set", "fault=raise", "--seed", "0", "--seed", "1"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1
    lines = res.stdout.splitlines()
    assert lines[2].startswith("seed 0  failed") and "injected failure on cos(x)" in lines[2]
    assert lines[3].startswith("seed 1  failed")
    assert lines[4] == "fitness  nan (0 of 2 seeds measured)"
    got = json.loads(CliRunner().invoke(main, [*args, "--json"]).stdout)
    assert got["fitness_mean"] is None and got["fitness_sd"] is None and got["measured"] == 0


def test_spread_counts_only_measured_results():
    results = [Result(50.0), Result.failed("boom"), Result(52.0), Result(51.0, status="aborted")]
    values, mean, sd = spread(results)
    assert values == [50.0, 52.0, 51.0] and mean == 51.0 and sd == pytest.approx(1.0)
    assert math.isnan(spread([Result(50.0)])[2]) and spread([Result(50.0)])[1] == 50.0
    assert all(math.isnan(v) for v in spread([Result.failed("x")])[1:])
