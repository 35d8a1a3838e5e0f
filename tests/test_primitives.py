"""Primitive sets: numpy and torch forms agree; GAAF's library is as documented."""

import zlib

import numpy as np
import pytest

from gpengine.errors import PluginError
from primitives import Primitive, PrimitiveSet, formula_set, get_set, set_names

torch = pytest.importorskip("torch")

SETS = {"gaaf": get_set("gaaf"), "arith": get_set("arith"), "formula": formula_set()}
CASES = [(name, prim) for name, pset in SETS.items() for prim in pset]


def _inputs(rng: np.random.Generator, n: int = 512) -> np.ndarray:
    """Mostly ordinary values, plus zeros, tiny and large ones, and the protection edges."""
    x = rng.normal(0.0, 2.0, n)
    x[:8] = [0.0, -0.0, 1e-9, -1e-9, 1e-3, -1e-3, 50.0, -50.0]
    x[8:40] = rng.uniform(-1e-2, 1e-2, 32)
    return x


def _check_close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    assert np.array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("set_name, prim", CASES, ids=[f"{s}-{p.name}" for s, p in CASES])
def test_numpy_and_torch_forms_agree(set_name, prim):
    rng = np.random.default_rng([zlib.crc32(set_name.encode()), zlib.crc32(prim.name.encode())])
    args = [_inputs(rng) for _ in range(prim.arity)]
    if prim.name == "pow":  # integer exponents keep negative bases real
        args[1] = np.where(rng.random(args[1].size) < 0.5, np.round(args[1]), args[1])
    for params in ([spec.init for spec in prim.params], list(rng.uniform(-2.0, 2.0, prim.n_params))):
        with np.errstate(all="ignore"):
            expected = np.broadcast_to(np.asarray(prim.numpy(*args, *params), dtype=np.float64), args[0].shape)
        t_args = [torch.from_numpy(a.copy()) for a in args]
        t_params = [torch.tensor(p, dtype=torch.float64) for p in params]
        actual = prim.torch(torch, *t_args, *t_params)
        assert actual.dtype == torch.float64
        _check_close(actual.numpy(), expected)


def test_torch_forms_take_per_channel_parameters():
    """In a layer, learnable parameters are one value per channel, broadcast over the batch."""
    gaaf = SETS["gaaf"]
    x = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    s = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64).view(1, 3, 1, 1)
    out = gaaf["scale"].torch(torch, x, s)
    assert torch.allclose(out[:, 2], 2.0 * x[:, 2])
    out = gaaf["blend"].torch(torch, x, -x, s)
    assert torch.allclose(out[:, 0], 0.5 * x[:, 0] - 0.5 * x[:, 0])


def test_gaaf_has_22_unary_and_11_binary_operators():
    gaaf = SETS["gaaf"]
    assert len(gaaf.with_arity(1)) == 22
    assert len(gaaf.with_arity(2)) == 11
    assert len(gaaf) == 33
    assert {p.name for p in gaaf if p.commutative} == {"add", "mul", "max", "min", "rbf", "lapl"}


def test_learnable_operators_and_their_initial_values():
    gaaf = SETS["gaaf"]
    learnable = {p.name: [(s.name, s.init) for s in p.params] for p in gaaf if p.params}
    assert learnable == {"scale": [("s", 1.0)], "shift": [("b", 0.0)], "lconst": [("s", 1.0)], "blend": [("beta", 1.0)]}
    x = np.linspace(-2.0, 2.0, 9)
    # at their initial values they are the identity, the identity, 1 and the first argument
    for name in ("scale", "shift"):
        np.testing.assert_array_equal(gaaf[name].numpy(x, gaaf[name].params[0].init), x)
    np.testing.assert_array_equal(gaaf["lconst"].numpy(x, 1.0), np.ones_like(x))
    np.testing.assert_array_equal(gaaf["blend"].numpy(x, -x, 1.0), x)


def test_protected_forms():
    gaaf, arith = SETS["gaaf"], SETS["arith"]
    assert gaaf["div"].numpy(np.array(1.0), np.array(0.0)) == pytest.approx(1e8)
    assert gaaf["log"].numpy(np.array(0.0)) == pytest.approx(np.log(1e-8))
    assert np.isfinite(gaaf["ssqrt"].numpy(np.array(-4.0)))
    assert arith["div"].numpy(np.array(3.0), np.array(1e-4)) == 1.0
    assert arith["log"].numpy(np.array(1e-4)) == 0.0
    assert SETS["formula"]["div"].numpy(np.array(3.0), np.array(0.0)) == 1.0  # arith's, the later set


def test_sets_are_known_by_name():
    assert {"gaaf", "arith"} <= set(set_names())
    assert get_set("gaaf") is get_set("gaaf")
    assert {p.name for p in SETS["arith"]} == {"add", "sub", "mul", "div", "neg", "sin", "cos", "exp", "log"}
    assert set(SETS["formula"].names()) == set(SETS["gaaf"].names()) | set(SETS["arith"].names()) | {"pow"}


def test_unknown_set_lists_known_names():
    with pytest.raises(PluginError) as info:
        get_set("nope")
    message = str(info.value)
    assert "'nope'" in message and "gaaf" in message and "arith" in message
    assert "entry-point group 'gpengine.primitives'" in message  # where an author's own set goes


def test_unknown_primitive_lists_known_names():
    with pytest.raises(PluginError) as info:
        SETS["arith"]["tanh"]
    message = str(info.value)
    assert "'tanh'" in message and "arith" in message
    for name in ("add", "sin", "log"):
        assert name in message
    assert SETS["arith"].get("tanh") is None and "tanh" not in SETS["arith"]


def test_primitives_refuse_bad_definitions():
    from primitives.registry import Primitive

    with pytest.raises(ValueError):
        Primitive("k", 0, lambda: 1.0, lambda t: 1.0)
    with pytest.raises(ValueError):
        Primitive("f", 1, np.sin, lambda t, a: t.sin(a), commutative=True)


def test_a_set_spec_with_operators_keeps_only_those():
    deap_ops = get_set("arith:add,sub,mul,div,neg,sin,cos")
    assert list(deap_ops.primitives) == ["add", "sub", "mul", "div", "neg", "sin", "cos"]
    assert deap_ops.name == "arith:add,sub,mul,div,neg,sin,cos"
    assert deap_ops.constant_range == get_set("arith").constant_range  # terminals as the set has them
    assert get_set("arith: add , mul").primitives.keys() == {"add", "mul"}
    with pytest.raises(PluginError, match="'pow' not in 'arith'"):
        get_set("arith:add,pow")
    with pytest.raises(PluginError, match=r"'arith:' names no operators after ':' \(e.g. arith:add,sub,mul\)"):
        get_set("arith:")
    with pytest.raises(PluginError, match="unknown primitive set 'nope'"):
        get_set("nope:add")


class _FakeEntryPoint:
    def __init__(self, name, factory):
        self.name, self._factory = name, factory

    def load(self):
        return self._factory


def _plugin_set():
    relu = Primitive("relu", 1, lambda a: np.maximum(a, 0.0), None, doc="max(a, 0)")
    return PrimitiveSet("relus", [*get_set("arith").with_arity(2), relu], constant_range=(-1.0, 1.0))


def test_a_plugin_set_is_known_by_its_entry_point_name(monkeypatch):
    # the search passes `pset.name` to the evaluator, which looks the set up again (in workers
    # too): a set named unlike its entry point failed every evaluation with "unknown primitive set"
    import primitives

    monkeypatch.setattr(primitives, "entry_points", lambda group: [_FakeEntryPoint("my-set", _plugin_set)])
    monkeypatch.setattr(primitives, "_CACHE", {})
    assert "my-set" in set_names()
    pset = get_set("my-set")
    assert pset.name == "my-set" and "relu" in pset
    assert get_set(pset.name) is pset
    assert get_set("my-set:add,relu").name == "my-set:add,relu"
