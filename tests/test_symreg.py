import numpy as np
import pytest

from gpengine.errors import ConfigError, DataError
from gpengine.expr_text import parse
from evaluators.symreg import SymbolicRegression
from primitives import get_set

ARITH = get_set("arith")


def test_exact_target_scores_zero_error():
    ev = SymbolicRegression(target="x**4+x**3+x**2+x")
    r = ev.evaluate(parse("x + x*x + x*x*x + x*x*x*x", ARITH))
    assert r.ok and r.fitness == pytest.approx(0.0, abs=1e-12)
    assert r.metrics["r2"] == pytest.approx(1.0)


def test_fitness_is_negative_mse_on_deap_points():
    ev = SymbolicRegression(target="x**2", points=20)
    assert np.allclose(ev.x, np.arange(-10, 10) / 10)
    r = ev.evaluate(parse("x", ARITH))
    assert r.fitness == pytest.approx(-np.mean((ev.x - ev.x**2) ** 2))


def test_r2_metric():
    ev = SymbolicRegression(target="sin(x)", metric="r2")
    assert ev.evaluate(parse("sin(x)", ARITH)).fitness == pytest.approx(1.0)


def test_non_finite_prediction_fails_with_reason():
    ev = SymbolicRegression()
    r = ev.evaluate(parse("exp(exp(exp(exp(x * 100.0))))", ARITH))
    assert r.status == "failed" and "non-finite" in r.message
    assert not r.ok


def test_csv_data(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("x,y\n" + "\n".join(f"{x},{2 * x + 1}" for x in np.linspace(-1, 1, 9)))
    ev = SymbolicRegression(data=str(f))
    assert len(ev.x) == 9
    assert ev.evaluate(parse("x + x + 1.0", ARITH)).fitness == pytest.approx(0.0)


def test_bad_inputs_are_user_errors(tmp_path):
    with pytest.raises(ConfigError, match="target"):
        SymbolicRegression(target="x +")
    with pytest.raises(ConfigError, match="unknown option 'colour'"):
        SymbolicRegression(colour="red")
    with pytest.raises(ConfigError, match="metric must be one of"):
        SymbolicRegression(metric="mae")
    with pytest.raises(DataError, match="not found"):
        SymbolicRegression(data=str(tmp_path / "missing.csv"))
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n3,abc\n")
    with pytest.raises(DataError, match="bad.csv:3"):
        SymbolicRegression(data=str(bad))
    nan = tmp_path / "nan.csv"  # float() reads "nan" and "inf": one such row failed every candidate
    nan.write_text("x,y\n0,1\n1,nan\n2,3\n")
    with pytest.raises(DataError, match="nan.csv:3: not a finite number"):
        SymbolicRegression(data=str(nan))


def test_dataset_digest_is_stable():
    assert SymbolicRegression().dataset().digest == SymbolicRegression().dataset().digest
    assert SymbolicRegression().dataset().digest != SymbolicRegression(target="x").dataset().digest
