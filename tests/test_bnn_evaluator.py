"""bnn-cifar evaluator on tiny synthetic CIFAR: results, failures, budgets, abort, options."""

from __future__ import annotations

import json
import math
import pickle

import pytest
import torch

from evaluators.bnn_cifar import BnnCifar
from evaluators.bnn_cifar import evaluator as E
from evaluators.bnn_cifar import train as T
from gpengine.errors import ConfigError, DataError, GpengineWarning
from gpengine.evaluator import ABORTED, FAILED, OK, DatasetInfo
from gpengine.expr_text import parse
from gpengine.plugins import load_evaluator_class
from tests.bnn_fakes import write_fake_cifar

# pinned to the CPU: these tests state the CPU's defaults and its exact, repeatable numbers, also on a
# machine with a GPU (where device=auto would pick it); the CUDA paths have their own tests at the end
TINY = dict(profile="smoke", width=4, epochs=2, train_size=192, val_size=100, batch_size=64, threads=1, abort="off",
            device="cpu")


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_fake_cifar(root, per_batch=60, n_test=50)
    return root


@pytest.fixture
def make(fake_root):
    def _make(**overrides):
        return BnnCifar(**{**TINY, "data_dir": str(fake_root), **overrides})

    return _make


def test_entry_point_loads_the_class():
    cls = load_evaluator_class("bnn-cifar")
    assert cls is BnnCifar
    assert cls.primitive_set == "gaaf" and cls.fidelity_unit == "epochs" and "percent" in cls.description


def test_identity_evaluation_returns_accuracy_metrics_and_curves(make):
    ev = make()
    r = ev.evaluate(parse("x"), budget=1.0, seed=0)
    assert r.status == OK, r.message
    assert 0.0 <= r.fitness <= 100.0 and r.fitness == r.metrics["final_accuracy"]
    for key in ("final_accuracy", "best_accuracy", "best_epoch", "final_loss", "wall_time",
                "images_per_second", "n_parameters", "epochs_run"):
        assert key in r.metrics, key
    assert r.metrics["epochs_run"] == 2 and r.metrics["images_per_second"] > 0
    assert {"val_accuracy", "train_loss", "lr"} <= set(r.curves)
    assert all(len(c) == 2 for c in r.curves.values())
    assert r.metrics["best_accuracy"] == max(r.curves["val_accuracy"])
    assert r.cost > 0


def test_same_seed_same_result_different_seed_differs(make):
    ev = make(epochs=1)
    a = ev.evaluate(parse("sin(x) + x"), seed=5)
    b = ev.evaluate(parse("sin(x) + x"), seed=5)
    c = ev.evaluate(parse("sin(x) + x"), seed=6)
    assert a.fitness == b.fitness and a.curves["train_loss"] == b.curves["train_loss"]
    assert c.curves["train_loss"] != a.curves["train_loss"]


def test_budget_scales_the_epochs_and_the_schedule(make):
    ev = make(epochs=4)
    assert [ev.epochs_for(b) for b in (0.1, 0.25, 0.5, 1.0)] == [1, 1, 2, 4]
    r = ev.evaluate(parse("x"), budget=0.5, seed=0)
    assert r.metrics["epochs_run"] == 2 and len(r.curves["val_accuracy"]) == 2
    assert r.curves["lr"][-1] < r.curves["lr"][0] or r.curves["lr"][0] < 5e-3  # annealed within 2 epochs
    assert ev.evaluate(parse("x"), budget=0.0).status == FAILED


def test_an_expression_that_is_nan_everywhere_fails_without_raising(make):
    r = make().evaluate(parse("(1e30 * 1e30 - 1e30 * 1e30) * x"), seed=0)
    assert r.status == FAILED and not r.ok and math.isnan(r.fitness)
    assert "NaN or infinite" in r.message


def test_an_unknown_primitive_fails_without_raising(make):
    r = make().evaluate(parse("nosuchop(x)"), seed=0)
    assert r.status == FAILED and "nosuchop" in r.message


def test_a_constant_beyond_float32_fails_without_raising(make):
    r = make().evaluate(parse("square(1e308) * x"), seed=0)  # the activation refuses a constant float32 cannot hold
    assert r.status == FAILED and not r.ok


def test_channels_last_on_request(make):
    assert make(channels_last="on").channels_last and not make(channels_last="off").channels_last


def test_exploding_loss_ends_with_a_failed_result(make, monkeypatch):
    monkeypatch.setattr(T, "LOSS_LIMIT", 0.0)
    r = make().evaluate(parse("x"), seed=0)
    assert r.status == FAILED and "exploding training loss" in r.message


def test_nan_loss_ends_with_a_failed_result(make, monkeypatch):
    real = torch.nn.functional.cross_entropy
    monkeypatch.setattr(T.F, "cross_entropy", lambda *a, **k: real(*a, **k) * math.nan)
    r = make().evaluate(parse("x"), seed=0)
    assert r.status == FAILED and "NaN training loss" in r.message


def test_a_torch_error_during_training_is_a_failed_result(make, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(E, "train", broken)
    r = make().evaluate(parse("x"), seed=0)
    assert r.status == FAILED and "boom" in r.message


def test_abort_after_the_first_epoch_below_the_floor(make, monkeypatch):
    ev = make(abort="on", epochs=3)
    monkeypatch.setattr(BnnCifar, "abort_floor", lambda self, epochs, data=None: 100.0)
    r = ev.evaluate(parse("x"), seed=0)
    assert r.status == ABORTED and r.ok and r.metrics["epochs_run"] == 1
    assert "degenerate floor" in r.message and r.metrics["abort_floor"] == 100.0
    monkeypatch.setattr(BnnCifar, "abort_floor", lambda self, epochs, data=None: -1.0)
    assert ev.evaluate(parse("x"), seed=0).status == OK


def test_abort_floor_is_measured_once_with_a_constant_and_cached_on_disk(make, monkeypatch, tmp_path):
    monkeypatch.setenv("GPENGINE_CACHE", str(tmp_path / "cache"))
    ev = make(abort="on", epochs=3)
    calls = []
    real = E.train

    def counting(model, data, cfg, seed, **kw):
        calls.append((str(model.binary_convs()[0].act.expr), kw.get("stop_after")))
        return real(model, data, cfg, seed, **kw)

    monkeypatch.setattr(E, "train", counting)
    floor = ev.abort_floor(3)
    assert calls == [("1.0", 1)] and 0.0 <= floor <= 100.0
    assert ev.abort_floor(3) == floor and len(calls) == 1  # cached
    files = list((tmp_path / "cache" / "bnn-cifar" / "floors").glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["floor"] == floor
    assert make(abort="on", epochs=3, width=5).abort_floor(3) is not None and len(calls) == 2  # new config


def test_a_cache_folder_that_cannot_be_written_costs_the_floor_its_file_not_the_candidate(make, monkeypatch,
                                                                                            tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "bnn-cifar").write_text("a file where the folder would go")  # as read-only or full
    monkeypatch.setenv("GPENGINE_CACHE", str(tmp_path / "cache"))
    ev = make(abort="on", epochs=3)
    calls = []
    real = E.train
    monkeypatch.setattr(E, "train", lambda *a, **kw: calls.append(kw.get("stop_after")) or real(*a, **kw))
    with pytest.warns(GpengineWarning, match="cannot cache the abort floor"):
        r = ev.evaluate(parse("x"), budget=1.0, seed=0)
    assert r.ok and "abort_floor" in r.metrics, r.message
    assert ev.evaluate(parse("sin(x)"), budget=1.0, seed=0).ok
    assert calls.count(1) == 1  # the floor measured once in this process all the same


def test_budget_scales_data_trains_all_epochs_on_a_fixed_share_of_the_images(make):
    """`budget_scales=data`: a low rung is the full schedule on a stratified subset, the same for every candidate."""
    ev = make(budget_scales="data")
    low = ev.evaluate(parse("x"), budget=1 / 3, seed=0)
    assert low.status == OK, low.message
    assert low.metrics["train_images"] == 64 and low.metrics["epochs_run"] == 2  # 192 / 3 images, all epochs
    assert ev.evaluate(parse("x"), budget=1 / 3, seed=0).fitness == low.fitness  # same images, same seed
    assert ev.data_for(1 / 3) is ev.data_for(1 / 3)  # cut once per process
    full = ev.evaluate(parse("x"), budget=1.0, seed=0)
    assert full.metrics["train_images"] == 192 and full.metrics["epochs_run"] == 2
    by_epochs = make().evaluate(parse("x"), budget=1 / 2, seed=0)  # the default shortens the schedule instead
    assert by_epochs.metrics["train_images"] == 192 and by_epochs.metrics["epochs_run"] == 1
    tiny = make(budget_scales="data").data_for(0.01)
    assert len(tiny.train_y) == TINY["batch_size"]  # never less than one batch
    assert make(budget_scales="data").config_key() != make().config_key()  # results never shared in the cache


def test_a_low_rung_validates_only_its_last_epoch_and_scores_the_same(make, monkeypatch):
    """`validate=auto`: a full run validates every epoch; a low rung only its last, to the same fitness."""
    passes = []
    real = T.evaluate_accuracy

    def counting(model, data, aug, cfg):
        passes.append(cfg.validate)
        return real(model, data, aug, cfg)

    monkeypatch.setattr(T, "evaluate_accuracy", counting)
    ev = make(epochs=3, budget_scales="data")
    low = ev.evaluate(parse("sin(x) + x"), budget=1 / 3, seed=0)
    assert low.status == OK, low.message
    assert passes == ["last"]  # one validation pass instead of three
    acc = low.curves["val_accuracy"]
    assert len(acc) == 3 and math.isnan(acc[0]) and math.isnan(acc[1]) and math.isfinite(acc[2])
    assert math.isnan(low.curves["val_loss"][0]) and len(low.curves["train_loss"]) == 3
    assert low.metrics["best_epoch"] == 3 and low.metrics["best_accuracy"] == low.fitness == acc[2]
    passes.clear()
    every = make(epochs=3, budget_scales="data", validate="every").evaluate(parse("sin(x) + x"), budget=1 / 3, seed=0)
    assert passes == ["every"] * 3 and every.fitness == low.fitness  # validation never changes training
    assert every.curves["train_loss"] == low.curves["train_loss"]
    passes.clear()
    full = ev.evaluate(parse("x"), budget=1.0, seed=0)
    assert passes == ["every"] * 3 and all(math.isfinite(a) for a in full.curves["val_accuracy"])


def test_abort_auto_checks_only_runs_that_validate_their_first_epoch(make, monkeypatch, tmp_path):
    """abort=auto: a full run (validated every epoch) is checked; a low rung would need an extra pass, so it is not."""
    monkeypatch.setenv("GPENGINE_CACHE", str(tmp_path / "cache"))
    floors = []
    monkeypatch.setattr(BnnCifar, "abort_floor", lambda self, epochs, data=None: floors.append(epochs) or 100.0)
    ev = make(abort="auto", epochs=3, budget_scales="data")
    assert ev.evaluate(parse("x"), budget=1 / 3, seed=0).status == OK and floors == []
    full = ev.evaluate(parse("x"), budget=1.0, seed=0)
    assert full.status == ABORTED and floors == [3]
    assert make(abort="on", epochs=3, budget_scales="data").evaluate(parse("x"), budget=1 / 3).status == ABORTED


def test_validating_the_last_epoch_still_checks_the_first_for_the_abort(make, monkeypatch, tmp_path):
    monkeypatch.setenv("GPENGINE_CACHE", str(tmp_path / "cache"))
    ev = make(abort="on", epochs=3, validate="last")
    monkeypatch.setattr(BnnCifar, "abort_floor", lambda self, epochs, data=None: 100.0)  # nothing beats it
    r = ev.evaluate(parse("x"), seed=0)
    assert r.status == ABORTED and r.metrics["epochs_run"] == 1 and "after epoch 1" in r.message
    monkeypatch.setattr(BnnCifar, "abort_floor", lambda self, epochs, data=None: -1.0)  # everything does
    r = ev.evaluate(parse("x"), seed=0)
    acc = r.curves["val_accuracy"]
    assert r.status == OK and math.isfinite(acc[0]) and math.isnan(acc[1]) and math.isfinite(acc[2])


def test_the_abort_floor_of_a_data_rung_is_measured_on_its_images(make, monkeypatch, tmp_path):
    monkeypatch.setenv("GPENGINE_CACHE", str(tmp_path / "cache"))
    ev = make(abort="on", epochs=3, budget_scales="data")
    seen = []
    real = E.train

    def counting(model, data, cfg, seed, **kw):
        seen.append((len(data.train_y), kw.get("stop_after")))
        return real(model, data, cfg, seed, **kw)

    monkeypatch.setattr(E, "train", counting)
    ev.evaluate(parse("x"), budget=1 / 3, seed=0)
    assert seen[0] == (64, 1)  # the constant's first epoch, on the rung's 64 images
    ev.evaluate(parse("x"), budget=1.0, seed=0)
    assert (192, 1) in seen  # the full rung measures its own floor


def test_final_val_size_scores_a_full_runs_last_epoch_on_more_images(make, monkeypatch):
    """Only the fitness gets the extra images: the other epochs, low rungs and the training stay as they were."""
    scored = []
    real = T.evaluate_accuracy

    def spy(model, data, aug, cfg):
        scored.append(len(data.eval_y))
        return real(model, data, aug, cfg)

    monkeypatch.setattr(T, "evaluate_accuracy", spy)
    split = make(train_size=150, val_size=60)
    wider = make(train_size=150, val_size=60, final_val_size=140)
    a = split.evaluate(parse("x"), seed=1)
    assert scored == [60, 60]
    scored.clear()
    b = wider.evaluate(parse("x"), seed=1)
    assert scored == [60, 140]
    assert a.curves["train_loss"] == b.curves["train_loss"]  # the same training images, the same run
    assert a.curves["val_accuracy"][0] == b.curves["val_accuracy"][0]  # epoch 1 on the same split
    assert b.fitness == b.curves["val_accuracy"][-1] and wider.dataset().n_validation == 140
    assert wider.config_key() != split.config_key()
    scored.clear()
    wider.evaluate(parse("x"), budget=0.5, seed=1)  # a low rung: the split alone
    assert scored == [60]
    assert make(train_size=150, val_size=60, final_val_size=0).settings["final_val_size"] == 0


def test_test_split_only_on_request(make):
    assert make().dataset().name == "CIFAR-10 (validation split)"
    info = make(split="test").dataset()
    assert isinstance(info, DatasetInfo) and info.name == "CIFAR-10 (test split)" and info.n_validation == 50
    assert info.digest != make().dataset().digest and info.n_train == 192


def test_profiles_and_overrides_resolve(make):
    ev = make(profile="quick", width=None, epochs=None, train_size=None, val_size=None, batch_size=None)
    assert ev.profile == "quick"
    assert (ev.settings["width"], ev.settings["epochs"], ev.settings["train_size"], ev.settings["val_size"]) == (
        16, 4, 10_000, 5000)
    assert make(profile="auto").profile in ("quick", "standard")
    paper = make(profile="paper", width=None, epochs=None, train_size=None, lr=None, batch_size=None)
    assert (paper.settings["width"], paper.settings["epochs"], paper.settings["lr"], paper.settings["batch_size"]) == (
        64, 15, 5e-3, 128)
    assert make(train_size=0).settings["train_size"] is None
    assert make(width=8).config_key() != make(width=4).config_key()
    # the quick profile flips without cropping; the longer ones crop as well; --set overrides
    assert ev.settings["augment"] == "flip" and paper.settings["augment"] == "crop-flip"
    assert ev.settings["batch_size"] == 64
    # the quick profile's short schedule trains the activation's own parameters 10x faster; GAAF's does not
    assert ev.train_config(4).act_lr_scale == 10.0 and paper.train_config(15).act_lr_scale == 1.0
    assert make(profile="quick", act_lr_scale=3).train_config(4).act_lr_scale == 3.0
    assert make(profile="quick", augment="none").train_config(4).augment == "none"
    assert make(augment="flip").config_key() != make(augment="crop-flip").config_key()


def test_cost_clock_cpu_counts_cpu_seconds_not_waiting(make, monkeypatch):
    """`cost_clock=cpu` keeps a neighbour's load out of `max_cost`: time spent off the CPU is not cost."""
    import time as _time

    real_train = E.train

    # The wait is long next to the compute (under a second here) so that the two runs' compute, which varies
    # with the machine's load, cannot close the gap: CI once saw 0.77 s of compute in one and 0.87 s in the other.
    def slow_train(*args, **kwargs):  # the process waits two seconds without computing
        _time.sleep(2.0)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(E, "train", slow_train)
    wall = make().evaluate(parse("x"), seed=0)
    cpu = make(cost_clock="cpu").evaluate(parse("x"), seed=0)
    assert wall.cost >= 2.0 and 0 < cpu.cost < wall.cost - 1.5
    assert cpu.fitness == wall.fitness  # the clock changes what is counted, not what is trained


def test_cost_clock_cpu_counts_the_child_processes_an_evaluation_runs(make, monkeypatch):
    """Inductor compiles with g++ in child processes: that CPU is the evaluation's cost too."""
    import subprocess
    import sys

    real_train = E.train
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.5: pass"

    def train_with_a_compiler(*args, **kwargs):  # a child that computes for 1.5 CPU-s, as g++ would
        subprocess.run([sys.executable, "-c", burn], check=True)
        return real_train(*args, **kwargs)

    base = make(cost_clock="cpu").evaluate(parse("x"), seed=0)
    monkeypatch.setattr(E, "train", train_with_a_compiler)
    with_child = make(cost_clock="cpu").evaluate(parse("x"), seed=0)
    assert with_child.cost >= 1.5 and with_child.cost > base.cost + 1.0
    assert with_child.fitness == base.fitness


class _FailingBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        raise RuntimeError("inductor: cannot lower the backward graph")


def _compile_failing_at_once(model, **kwargs):
    def call(x):
        raise RuntimeError("inductor: no C++ compiler")
    return call


def _compile_failing_in_backward(model, **kwargs):
    # the backward compiles at the first loss.backward(), after the compiled forward has updated
    # BatchNorm's running statistics: the eager redo of that batch must not count it twice
    return lambda x: _FailingBackward.apply(model(x))


def test_a_compile_failure_falls_back_to_eager_with_the_same_result(make, monkeypatch):
    eager = make(compile="off").evaluate(parse("sin(x) + x"), seed=3)
    assert eager.metrics["compiled"] == 0
    for broken_compile in (_compile_failing_at_once, _compile_failing_in_backward):
        monkeypatch.setattr(T.torch, "compile", broken_compile)
        fallback = make(compile="on").evaluate(parse("sin(x) + x"), seed=3)
        assert fallback.status == OK and fallback.metrics["compiled"] == 0, broken_compile.__name__
        assert fallback.fitness == eager.fitness and fallback.curves == eager.curves, broken_compile.__name__


def test_an_evaluation_compile_failure_falls_back_to_eager_evaluation(make, monkeypatch):
    """If only the eval-mode graph fails to compile, validation runs eagerly and training stays compiled."""

    class FakeCompiled(torch.nn.Module):  # stands in for torch.compile's wrapper: same module inside
        def __init__(self, model):
            super().__init__()
            self.inner = model

        def forward(self, x):
            return self.inner(x)

    real_evaluate = T.evaluate_accuracy
    seen = []

    def evaluate(model, *args):
        seen.append(type(model).__name__)
        if isinstance(model, FakeCompiled):
            raise RuntimeError("inductor: cannot lower this graph")
        return real_evaluate(model, *args)

    eager = make(compile="off").evaluate(parse("sin(x) + x"), seed=3)
    monkeypatch.setattr(T.torch, "compile", lambda model, **kw: FakeCompiled(model))
    monkeypatch.setattr(T, "evaluate_accuracy", evaluate)
    r = make(compile="on").evaluate(parse("sin(x) + x"), seed=3)
    assert r.status == OK and r.metrics["compiled"] == 1
    assert seen == ["FakeCompiled", "BinaryResNet18", "BinaryResNet18"]  # tried once, then eager for both epochs
    assert r.curves == eager.curves


def test_compile_mode_reduce_overhead_asks_for_cuda_graphs_and_marks_every_step(make, monkeypatch):
    """`compile_mode=reduce-overhead`: torch.compile's CUDA-graph mode, each step a new graph iteration."""
    modes, marks = [], []

    def fake_compile(model, **kwargs):
        modes.append(kwargs.get("mode"))
        return model  # the eager module stands in for the compiled one: same numbers

    eager = make(compile="off").evaluate(parse("sin(x) + x"), seed=3)
    monkeypatch.setattr(T.torch, "compile", fake_compile)
    monkeypatch.setattr(T.torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    ev = make(compile="on", compile_mode="reduce-overhead")
    assert ev.compile_mode == "reduce-overhead"
    r = ev.evaluate(parse("sin(x) + x"), seed=3)
    assert r.status == OK and r.curves == eager.curves and modes == ["reduce-overhead"]
    data, cfg = ev.data(), ev.train_config(2)
    steps = cfg.epochs * (len(data.train_y) // cfg.batch_size)
    val_batches = -(-len(data.eval_y) // cfg.eval_batch_size)
    assert len(marks) == steps + cfg.epochs * val_batches  # every training step and validation batch
    modes.clear()
    make(compile="on").evaluate(parse("x"), seed=0)  # the default mode: torch's own, no marks
    assert modes == [None] and len(marks) == steps + cfg.epochs * val_batches
    assert make().compile_mode == "default"
    marks.clear()  # not compiling: no marks, whatever the mode (an eager run never touches CUDA graphs)
    make(compile="off", compile_mode="reduce-overhead").evaluate(parse("x"), seed=0)
    assert marks == []


def test_auto_on_a_gpu_means_cuda_graphs_and_compiling_only_long_runs(make, monkeypatch):
    monkeypatch.setattr(E.torch.cuda, "is_available", lambda: True)  # construction only: nothing runs on it
    profile = dict(width=None, epochs=None, train_size=None, val_size=None, batch_size=None)
    standard, quick = make(profile="auto", device="auto", **profile), make(profile="quick", device="auto", **profile)
    assert standard.device == "cuda" and standard.profile == "standard"
    assert standard.compile and standard.compile_mode == "reduce-overhead" and standard.channels_last
    assert not quick.compile and not standard.amp and not standard.binary_bf16
    assert make(device="auto", compile_mode="default").compile_mode == "default"


def test_a_cuda_graph_failure_at_a_later_call_still_falls_back_to_eager(make, monkeypatch):
    """CUDA graphs are recorded at the 2nd or 3rd call: a failure there is torch.compile's, not the candidate's."""
    calls = []

    def compile_that_fails_when_recording(model, **kwargs):
        def call(x):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("cudagraphs: cannot record this graph")
            return model(x)
        return call

    eager = make(compile="off").evaluate(parse("sin(x) + x"), seed=3)
    monkeypatch.setattr(T.torch, "compile", compile_that_fails_when_recording)
    r = make(compile="on", compile_mode="reduce-overhead").evaluate(parse("sin(x) + x"), seed=3)
    assert r.status == OK and r.metrics["compiled"] == 0 and r.curves == eager.curves, r.message
    calls.clear()
    failed = make(compile="on").evaluate(parse("sin(x) + x"), seed=3)  # default mode: only the 1st call may
    assert failed.status == "failed" and "cannot record" in failed.message


def test_evaluation_in_padded_batches_matches_one_batch(make):
    """The last evaluation batch is padded to full size (one compiled shape); padding changes nothing."""
    import attrs

    ev = make()
    data, model = ev.data(), ev.build_model(parse("sin(x) + x"), seed=0)
    aug = T.Augment(torch.device("cpu"))
    whole = T.evaluate_accuracy(model, data, aug, attrs.evolve(ev.train_config(1), eval_batch_size=1000))
    padded = T.evaluate_accuracy(model, data, aug, attrs.evolve(ev.train_config(1), eval_batch_size=32))  # 100 = 3x32 + 4
    assert padded[0] == whole[0] and padded[1] == pytest.approx(whole[1], rel=1e-5)


@pytest.mark.slow
def test_a_compiled_run_trains_like_the_eager_one(make):
    """torch.compile through the custom sign/STE autograd Functions: same losses to float tolerance.

    In fp32: with bf16 convolutions (`amp=auto` on a CPU with native bf16) the two graphs round
    gradients at different points, 0.5% apart, as each is from fp32, which 3 Adam steps amplify.

    TINY's width 4 runs its shortcuts from 4 channels: before the shortcut subsampled its input
    itself (model.py), inductor's channels-last 1x1 stride-2 convolution there corrupted the heap on
    CPUs without AVX-512 (torch 2.13.0). Now the losses agree to 1e-7 on that CPU.
    """
    eager = make(compile="off", epochs=1, amp="off").evaluate(parse("sin(x) + x"), seed=2)
    compiled = make(compile="on", epochs=1, amp="off").evaluate(parse("sin(x) + x"), seed=2)
    assert compiled.status == OK and compiled.metrics["compiled"] == 1, compiled.message
    assert compiled.curves["train_loss"] == pytest.approx(eager.curves["train_loss"], rel=1e-3)
    # validation ran through the compiled eval-mode graph: same loss as eager to float tolerance
    assert compiled.curves["val_loss"] == pytest.approx(eager.curves["val_loss"], rel=1e-3)


def test_compile_auto_only_where_it_repays_its_compile_time(make):
    profile = dict(width=None, epochs=None, train_size=None, val_size=None, batch_size=None)
    assert make(profile="quick", **profile).compile  # 40k training images
    assert make(profile="standard", **profile).compile  # 450k
    assert not make(profile="smoke", **profile).compile  # 4k: the compile would cost more than it saves
    quick = make(profile="quick", **profile)
    assert quick.compiles(40_000) and not quick.compiles(39_999)
    assert make(compile="on").compile and not make(compile="off", epochs=100, train_size=10_000).compile
    assert make(compile="on").compiles(1) and not make(compile="off").compiles(10**9)
    assert make(compile="on").config_key() != make(compile="off").config_key()


@pytest.mark.parametrize("scales", ["epochs", "data"])
def test_compile_auto_decides_per_run_so_a_low_rung_trains_eagerly(make, monkeypatch, scales):
    """A successive-halving low rung trains a quarter of the images: under `compile=auto` its compile
    (40-50 s of g++ on a CPU) would cost more than it saves, so it runs eagerly; the full run compiles."""
    compiled_runs = []

    def fake_compile(model, **kwargs):  # stands in for inductor: same numbers, no g++
        compiled_runs.append(model)
        return model

    monkeypatch.setattr(T.torch, "compile", fake_compile)
    monkeypatch.setattr(E, "COMPILE_MIN_IMAGES", 4 * 192)  # TINY: 4 epochs x 192 images = one full run
    ev = make(epochs=4, budget_scales=scales)
    assert ev.compile  # a full-budget run repays it
    low = ev.evaluate(parse("x"), budget=0.25, seed=0)
    assert low.status == OK and low.metrics["compiled"] == 0 and not compiled_runs
    full = ev.evaluate(parse("x"), budget=1.0, seed=0)
    assert full.status == OK and full.metrics["compiled"] == 1 and len(compiled_runs) == 1


def test_amp_binary_runs_only_the_binary_convolutions_in_bf16(make, monkeypatch):
    monkeypatch.setattr(E, "_cpu_has_fast_bf16", lambda: True)  # no slow-bf16 warning on CPUs without it
    ev = make(amp="binary")
    assert ev.binary_bf16 and not ev.amp and not ev.train_config(2).amp  # no autocast of the rest
    model = ev.build_model(parse("x"), seed=0)
    assert {c.compute_dtype for c in model.binary_convs()} == {torch.bfloat16}
    assert ev.config_key() != make(amp="off").config_key() != make(amp="on").config_key()
    r = ev.evaluate(parse("x"), budget=1.0, seed=0)
    assert r.status == OK and 0.0 <= r.fitness <= 100.0, r.message
    off = make(amp="off")
    assert not off.binary_bf16 and not off.amp
    assert {c.compute_dtype for c in off.build_model(parse("x"), seed=0).binary_convs()} == {None}
    # auto: binary bf16 on a CPU with native bf16, fp32 on one without; never the whole-network autocast
    monkeypatch.setattr(E, "_cpu_has_fast_bf16", lambda: True)
    assert make().binary_bf16 and not make().amp
    monkeypatch.setattr(E, "_cpu_has_fast_bf16", lambda: False)
    assert not make().binary_bf16 and not make().amp
    with pytest.warns(GpengineWarning, match="amp=on"):  # bf16 without native bf16 (the next test)
        on = make(amp="on")
    assert on.amp and not on.binary_bf16


def test_bf16_asked_for_on_a_cpu_without_native_bf16_warns(make, monkeypatch):
    """There the bf16 convolutions take a slow fallback (about 12x slower than fp32): say so, train as asked."""
    import warnings

    monkeypatch.setattr(E, "_cpu_has_fast_bf16", lambda: False)
    for amp in ("binary", "on"):
        with pytest.warns(GpengineWarning, match=f"amp={amp} on a CPU without native bf16") as seen:
            ev = make(amp=amp)
        assert len(seen) == 1 and "12x slower" in str(seen[0].message) and "\n" not in str(seen[0].message)
        assert ev.binary_bf16 or ev.amp  # still what was asked
    with warnings.catch_warnings():
        warnings.simplefilter("error", GpengineWarning)
        make(), make(amp="off")  # auto is fp32 here: nothing to say
        monkeypatch.setattr(E, "_cpu_has_fast_bf16", lambda: True)
        make(amp="binary"), make(amp="on")


def test_act_lr_scale_speeds_up_only_the_activations_own_parameters(make):
    """One training step (one batch) from the same start: Adam moves each parameter by about its
    learning rate whatever the gradient's size, so the shifts move 10x as far, every other weight the same."""
    expr = parse("shift(x)")
    moved = {}
    for k in (1.0, 10.0):
        ev = make(act_lr_scale=k, epochs=1, train_size=64)
        model = ev.build_model(expr, seed=0)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        T.train(model, ev.data_for(1.0), ev.train_config(1), seed=0)
        moved[k] = {n: (p.detach() - before[n]).abs() for n, p in model.named_parameters()}
    own = {n for n, p in model.named_parameters() if any(p is q for q in model.activation_parameters())}
    assert len(own) == len(model.binary_convs()) == 19  # an activation in front of every binary convolution
    for name, delta in moved[10.0].items():
        if name in own:
            assert delta.max() > 0 and torch.allclose(delta, 10 * moved[1.0][name], rtol=1e-3, atol=0), name
        else:
            assert torch.equal(delta, moved[1.0][name]), name
    assert make(act_lr_scale=10).config_key() != make().config_key()
    assert make(profile="paper", act_lr_scale=None).settings["act_lr_scale"] == 1.0  # GAAF's protocol


@pytest.mark.parametrize("bad", [dict(profile="huge"), dict(width=0), dict(lr=-1.0), dict(device="tpu"),
                                 dict(split="train"), dict(amp="maybe"), dict(bogus=1), dict(cost_clock="gpu"),
                                 dict(augment="rotate"), dict(train_size=48_000, val_size=5000),
                                 dict(budget_scales="images"), dict(compile_mode="max-autotune"),
                                 dict(validate="sometimes"), dict(act_lr_scale=0),
                                 dict(train_size=10_000, val_size=5000, final_val_size=45_000),
                                 dict(train_size=0, final_val_size=200), dict(final_val_size=-1)])
def test_bad_options_are_config_errors(make, bad):
    with pytest.raises(ConfigError):
        make(**bad)


def test_missing_data_is_a_data_error_at_construction(tmp_path):
    with pytest.raises(DataError, match="CIFAR-10 not found"):
        BnnCifar(**{**TINY, "data_dir": str(tmp_path / "empty"), "download": "off"})


def test_evaluator_pickles_without_its_data(make):
    ev = make()
    ev.data()
    blob = pickle.dumps(ev)
    assert len(blob) < 20_000
    assert pickle.loads(blob).evaluate(parse("x"), budget=0.5, seed=1).status == OK


def test_resolved_settings_name_what_the_profile_and_auto_chose(make):
    import json

    ev = make(profile="quick", width=None, epochs=None, train_size=None, val_size=None, batch_size=None,
              device="cpu", compile="auto", amp="off")
    got = ev.resolved_settings()
    assert json.loads(json.dumps(got)) == got  # plain JSON, for MLflow params and search.json
    assert {k: got[k] for k in ("profile", "width", "epochs", "train_size", "val_size", "final_val_size",
                                "batch_size", "lr", "act_lr_scale", "augment", "device", "amp", "channels_last",
                                "compile_mode")} == {
        "profile": "quick", "width": 16, "epochs": 4, "train_size": 10_000, "val_size": 5000,
        "final_val_size": 20_000, "batch_size": 64,
        "lr": 5e-3, "act_lr_scale": 10.0, "augment": "flip", "device": "cpu", "amp": "off", "channels_last": "off",
        "compile_mode": "default"}
    assert got["compile"] in ("on", "off") and got["threads"] == 1 and got["data_folder"] == str(ev.folder)


# --- on a GPU: the CUDA paths, run where torch sees one (a leased machine; CI has none) ---

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: GPU paths untested here")


@needs_cuda
@pytest.mark.parametrize("text", ["x", "1.894 + x", "scale(x) + lconst(x)", "sin(x) + x"])
def test_on_a_gpu_every_kind_of_activation_trains(make, text):
    """With and without learnable parameters, with and without constants (a constant's buffer follows the
    model to the GPU, and so must the probe that checks the activation before training)."""
    r = make(device="cuda").evaluate(parse(text), seed=0)
    assert r.status == OK and 0.0 <= r.fitness <= 100.0, r.message
    assert r.metrics["epochs_run"] == 2 and len(r.curves["val_accuracy"]) == 2


@needs_cuda
def test_on_a_gpu_an_activation_nan_everywhere_fails_with_its_reason(make):
    r = make(device="cuda").evaluate(parse("(1e30 * 1e30 - 1e30 * 1e30) * x"), seed=0)
    assert r.status == FAILED and "NaN or infinite" in r.message


@needs_cuda
def test_on_a_gpu_evaluation_in_padded_batches_matches_one_batch(make):
    import attrs

    ev = make(device="cuda")
    data, model = ev.data(), ev.build_model(parse("sin(x) + x"), seed=0)
    aug = T.Augment(torch.device("cuda"))
    whole = T.evaluate_accuracy(model, data, aug, attrs.evolve(ev.train_config(1), eval_batch_size=1000))
    padded = T.evaluate_accuracy(model, data, aug, attrs.evolve(ev.train_config(1), eval_batch_size=32))
    assert padded[0] == whole[0] and padded[1] == pytest.approx(whole[1], rel=1e-4)


def test_a_default_search_runs_two_evaluations_on_a_cpu_and_up_to_six_on_a_gpu(monkeypatch):
    monkeypatch.setattr(E.torch.cuda, "is_available", lambda: False)
    assert E._default_jobs() == 2
    monkeypatch.setattr(E.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(E.os, "cpu_count", lambda: 16)
    assert E._default_jobs() == 6
    monkeypatch.setattr(E.os, "cpu_count", lambda: 4)  # one CPU core per evaluation at most
    assert E._default_jobs() == 4
