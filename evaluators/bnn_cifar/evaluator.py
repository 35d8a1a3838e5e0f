"""bnn-cifar: fitness of an activation = validation accuracy of a binary ResNet-18 using it.

The plugin class the engine builds from ``--set`` options. Construction
resolves the profile, checks that the data is there (downloading it if
needed; a missing dataset is a `DataError`, the user's to fix) and loads
nothing else. Each worker loads the images once per process and keeps them
(a module-level cache), so later evaluations pay only for training.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, ClassVar

import attrs
import torch
from attrs import validators as v

from evaluators.bnn_cifar import profiles
from evaluators.bnn_cifar.data import AUGMENTATIONS, CifarData, cache_root, data_root, ensure_cifar10, load_cifar10
from evaluators.bnn_cifar.model import BinaryResNet18, n_parameters
from evaluators.bnn_cifar.train import Outcome, TrainConfig, train
from gpengine.errors import ConfigError, GpengineWarning
from gpengine.evaluator import ABORTED, FAILED, OK, DatasetInfo, Evaluator, Result
from gpengine.expr import Expr

_DATA: dict[tuple, CifarData] = {}  # per process: loaded once, reused by every evaluation
_FLOORS: dict[str, float] = {}  # by cache file, per process: measured once even where the file cannot be written
_SWITCH = ("auto", "on", "off")
_AMP = ("auto", "on", "off", "binary")  # binary: bf16 in the binary convolutions only (model.set_binary_dtype)


def _switch(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value).lower()


def _opt(validator) -> Any:
    return attrs.field(default=None, validator=v.optional(validator))


def _positive_int():
    return [v.instance_of(int), v.ge(1)]


def _default_jobs() -> int:
    """Evaluations at once in a default search: one per core of a 2-core CPU (threads=1 each); on a
    GPU, up to 6 (one CPU core each). One small network leaves the card mostly idle: six eager quick
    runs at once each ran as fast as one alone, and eight compiled standard runs at once 1.6-2.3x
    slower than one alone, so about 4x the evaluations (BENCHMARKS.md, "On a GPU" and session 23)."""
    if torch.cuda.is_available():
        return max(1, min(6, os.cpu_count() or 1))
    return 2


class BnnCifar(Evaluator):
    """Fitness = top-1 accuracy in percent (0-100) on a held-out validation split of CIFAR-10."""

    description: ClassVar[str] = (
        "binary ResNet-18 on CIFAR-10 with the expression before every sign; "
        "fitness = validation top-1 accuracy in percent (0-100)"
    )
    primitive_set: ClassVar[str] = "gaaf"
    fidelity_unit: ClassVar[str] = "epochs"
    min_budget: ClassVar[float] = 0.25
    version: ClassVar[str] = "1"
    # Training is the cost: reject hopeless activations for free, remember every result
    # across searches and resumes, and train in worker processes (timeouts, crashes isolated).
    prescreen: ClassVar[bool] = True
    persistent_cache: ClassVar[bool] = True
    isolate: ClassVar[bool] = True
    activation_plots: ClassVar[bool] = True
    dataset_name: ClassVar[str] = "CIFAR-10"
    n_train_images: ClassVar[int] = 50_000  # each individual's run gets a PNG of f and f' over [-3, 3]
    # A default search that ends in about an hour on a 2-core CPU with the quick profile
    # (~1-2 min per evaluation): steady state checks the clock after every child.
    search_defaults: ClassVar[dict] = {
        "population": 12,
        "generations": 3,
        "jobs": _default_jobs(),  # 2 on a CPU, up to 6 on a GPU
        "mode": "steady_state",
        "max_time": 3600.0,
        "max_depth": 6,
        "max_size": 20,
        "init_max_depth": 3,
    }

    @attrs.define
    class Options:
        """Knobs left unset take the value of `profile` (see evaluators/bnn_cifar/profiles.py)."""

        profile: str = attrs.field(default="auto", validator=v.in_(profiles.PROFILE_NAMES))
        data_dir: str | None = _opt(v.instance_of(str))
        width: int | None = _opt(_positive_int())
        epochs: int | None = _opt(_positive_int())
        train_size: int | None = _opt([v.instance_of(int), v.ge(0)])  # 0: every image not held out
        val_size: int | None = _opt(_positive_int())
        # A full run's last epoch, its fitness, is scored on this many images: the validation split
        # and more held out of training (0: the split alone). Everything else (the other epochs,
        # the early abort, low rungs) scores the split alone.
        final_val_size: int | None = _opt([v.instance_of(int), v.ge(0)])
        batch_size: int | None = _opt(_positive_int())
        lr: float | None = _opt([v.instance_of((int, float)), v.gt(0)])
        # the activation's own parameters (shift, scale, constant, blend) learn at lr x this
        act_lr_scale: float | None = _opt([v.instance_of((int, float)), v.gt(0)])
        clip: float | None = _opt([v.instance_of((int, float)), v.gt(0)])
        augment: str | None = _opt(v.in_(AUGMENTATIONS))  # crop-flip, flip or none
        amp: Any = attrs.field(default="auto", converter=_switch, validator=v.in_(_AMP))  # bf16: see __init__
        channels_last: Any = attrs.field(default="auto", converter=_switch, validator=v.in_(_SWITCH))
        compile: Any = attrs.field(default="auto", converter=_switch, validator=v.in_(_SWITCH))  # torch.compile
        # torch.compile's mode when compiling: reduce-overhead adds CUDA graphs (auto: on a GPU)
        compile_mode: str = attrs.field(default="auto", validator=v.in_(("auto", "default", "reduce-overhead")))
        device: str = attrs.field(default="auto", validator=v.in_(("auto", "cpu", "cuda")))
        # One torch thread per evaluation by default: float reductions depend on the thread
        # count, so this keeps a seed's fitness the same whatever --jobs is; and on 2 cores,
        # 2 workers x 1 thread ran 1.7x faster than 1 worker x 2 threads (BENCHMARKS.md).
        threads: int = attrs.field(default=1, validator=[v.instance_of(int), v.ge(0)])  # 0: torch's default
        split: str = attrs.field(default="validation", validator=v.in_(("validation", "test")))
        split_seed: int = attrs.field(default=0, validator=v.instance_of(int))
        # Stop after epoch 1 a run no better than a constant activation. auto: where that epoch is validated
        # anyway (validate=every); a low rung that validates only its last epoch would pay an extra pass
        # in every run for the few it aborts (9% of the low-rung runs of two quick-profile searches).
        abort: Any = attrs.field(default="auto", converter=_switch, validator=v.in_(_SWITCH))
        download: Any = attrs.field(default="on", converter=_switch, validator=v.in_(("on", "off")))
        # What Result.cost (and so `max_cost`) counts: wall seconds, or the process's CPU seconds,
        # which a neighbour's load does not inflate (equal-compute comparisons on a shared box).
        cost_clock: str = attrs.field(default="wall", validator=v.in_(("wall", "cpu")))
        # What a budget below 1 (a low rung of `fidelity=sh`) shortens: the epochs, or the training
        # images (a fixed stratified subset, all epochs). On the smoke search protocol 3 epochs on a
        # third of the images ranked the working activations like full training (Spearman 0.92 over 10)
        # where 1 epoch on all of them did not (0.67; BENCHMARKS.md, issue 6, session 10).
        budget_scales: str = attrs.field(default="epochs", validator=v.in_(("epochs", "data")))
        # Which epochs are validated: every one, or only the last (and the first, for the early abort).
        # auto: every epoch of a full-budget run, whose curves people read; only the last of a low rung,
        # which is ranked on its final accuracy alone and where eager validation of 5,000 images was 44%
        # of the run (quick profile, CPU). The fitness is the same either way.
        validate: str = attrs.field(default="auto", validator=v.in_(("auto", "every", "last")))

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.options
        if o.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("option device='cuda' but torch sees no CUDA device (use device='cpu' or 'auto')")
        self.device = "cuda" if o.device == "cuda" or (o.device == "auto" and torch.cuda.is_available()) else "cpu"
        on_gpu = self.device == "cuda"
        self.profile = profiles.resolve_profile(o.profile, on_gpu)
        self.settings = profiles.settings_from(self.profile, attrs.asdict(o))
        s = self.settings
        # the images held out of training: the split, or final_val_size's larger set around it
        scored = "final_val_size" if (s["final_val_size"] or 0) > s["val_size"] else "val_size"
        if scored == "final_val_size" and not s["train_size"]:
            raise ConfigError(f"final_val_size {s['final_val_size']} needs images held out of training: "
                              f"set train_size (profile {self.profile} trains on all but the validation split)")
        held = (s["train_size"] or 0) + s[scored]
        if held > self.n_train_images:
            raise ConfigError(f"train_size + {scored} = {held}, but {self.dataset_name} has "
                              f"{self.n_train_images} training images")
        # bf16 only where it was measured to pay, a CPU with native bf16, and there only in the
        # binary convolutions (`amp=binary`): their +-1 operands are exact in bf16, and on such a
        # CPU (AVX512-BF16) they trained 1.5x faster at width 16 and 1.9x at width 64, scoring as
        # fp32 does (quick profile, 16 seeds: 45.53 +- 0.65 against 45.60 +- 0.59), where autocast
        # of the whole network (`amp=on`) was as fast but scored lower (45.23 +- 0.46 over 8 seeds;
        # BENCHMARKS.md, session 11). On an H100 these small convolutions are launch-bound and bf16
        # ran no faster (5,313 vs 6,329 img/s, quick profile), so a GPU trains in fp32 unless asked.
        self.amp = o.amp == "on"
        self.binary_bf16 = o.amp == "binary" or (o.amp == "auto" and not on_gpu and _cpu_has_fast_bf16())
        if (self.amp or self.binary_bf16) and self.device == "cpu" and not _cpu_has_fast_bf16():
            # without native bf16 the convolutions take slow_conv2d and a plain BLAS loop: the training
            # step ran 11.7x (binary) and 12.7x (on) slower than fp32 (width 16, eager, one thread, a
            # 2-core CPU without AVX-512; BENCHMARKS.md, session 30)
            warnings.warn(f"amp={o.amp} on a CPU without native bf16 (no AMX or AVX512-BF16): its bf16 "
                          "convolutions run about 12x slower than fp32 here; amp=auto trains in fp32 on this CPU",
                          GpengineWarning, stacklevel=2)
        # channels-last is opt-in on a CPU (`channels_last=on`): its training step ran up to 1.08x
        # faster there, but a whole quick-profile evaluation only 2% (validation and data do not
        # gain), with the same accuracy over 8 seeds (BENCHMARKS.md, session 11)
        self.channels_last = o.channels_last == "on" or (o.channels_last == "auto" and on_gpu)
        self._on_gpu = on_gpu
        self.compile = self.compiles(self.settings["epochs"] * self._full_train_size())  # a full-budget run
        # CUDA graphs on a GPU, where the small kernels of this network are launch-bound: one replay
        # per forward and backward instead of hundreds of launches (on a CPU the mode changes nothing)
        self.compile_mode = o.compile_mode if o.compile_mode != "auto" else ("reduce-overhead" if on_gpu else "default")
        self.folder = self._find_data()

    # -- data (subclasses for other datasets override _find_data and _load) ----------------
    def _find_data(self):
        return ensure_cifar10(data_root(self.options.data_dir), download=self.options.download == "on")

    def _load(self) -> CifarData:
        s = self.settings
        return load_cifar10(self.folder, s["train_size"], s["val_size"], self.options.split, self.options.split_seed,
                            s["final_val_size"])

    def _data_key(self) -> tuple:
        s = self.settings
        return (type(self).__name__, str(self.folder), s["train_size"], s["val_size"], s["final_val_size"],
                self.options.split, self.options.split_seed, self.device)

    def data(self) -> CifarData:
        key = self._data_key()
        if key not in _DATA:
            _DATA[key] = self._load().to(torch.device(self.device))
        return _DATA[key]

    def dataset(self) -> DatasetInfo:
        d = self.data()
        return DatasetInfo(
            name=f"{self.dataset_name} ({d.eval_split} split)",
            digest=d.digest,
            source=str(self.folder),
            n_train=len(d.train_y),
            n_validation=len(d.eval_y),
        )

    def resolved_settings(self) -> dict[str, Any]:
        """The options with every "auto" and profile knob replaced by what this machine and version chose.

        `compile` is the choice for a full-budget run (`compile=auto` decides per run: a low rung of
        successive halving may train eagerly); `validate=auto` likewise stays as given.
        """
        return {
            **super().resolved_settings(),
            "profile": self.profile,
            **self.settings,
            "data_folder": str(self.folder),
            "device": self.device,
            "amp": "on" if self.amp else ("binary" if self.binary_bf16 else "off"),
            "channels_last": "on" if self.channels_last else "off",
            "compile": "on" if self.compile else "off",
            "compile_mode": self.compile_mode,
        }

    def config_key(self) -> str:
        """Keyed on the resolved settings, so 'auto' on a CPU and on a GPU never share a cache."""
        blob = json.dumps(
            {"base": super().config_key(), "settings": self.settings, "device": self.device, "amp": self.amp,
             "compile": self.compile, **({"binary_bf16": True} if self.binary_bf16 else {})},
            sort_keys=True,
        )
        return hashlib.blake2b(blob.encode(), digest_size=10).hexdigest()

    # -- evaluation ----------------------------------------------------------------------
    def _full_train_size(self) -> int:
        return self.settings["train_size"] or self.n_train_images - self.settings["val_size"]

    def compiles(self, images: int) -> bool:
        """Whether a run that trains on `images` images (epochs x training set) is compiled. `auto`
        decides per run, so a low rung of successive halving (a quarter of the epochs or the data)
        trains eagerly when its compile would cost more than it saves."""
        o = self.options.compile
        return o == "on" or (o == "auto" and images >= (COMPILE_MIN_IMAGES_GPU if self._on_gpu else COMPILE_MIN_IMAGES))

    def train_config(self, epochs: int, images: int | None = None, budget: float = 1.0) -> TrainConfig:
        """How to train for `epochs`; `images`, the images the run trains on, decides `compile=auto`
        (default: the full training set for every epoch), and `budget` `validate=auto`."""
        s = self.settings
        compile = self.compile if images is None else self.compiles(images)
        validate = self.options.validate
        if validate == "auto":
            validate = "every" if budget >= 1 else "last"
        return TrainConfig(
            epochs=epochs, batch_size=s["batch_size"], lr=float(s["lr"]), act_lr_scale=float(s["act_lr_scale"]),
            amp=self.amp,
            channels_last=self.channels_last, device=self.device, compile=compile,
            compile_mode=self.compile_mode, augment=s["augment"], validate=validate,
        )

    def epochs_for(self, budget: float) -> int:
        """Epochs of a run at `budget` (a fraction of the profile's epochs, at least one)."""
        if self.options.budget_scales == "data":
            return self.settings["epochs"]
        return max(1, round(self.settings["epochs"] * budget))

    def data_for(self, budget: float) -> CifarData:
        """The data of a run at `budget`: all of it, or with `budget_scales=data` that fraction of
        the training images (at least one batch), the same subset for every candidate. Below the
        full budget it is scored on the validation split alone, without `final_val_size`'s extra
        images: a low rung ranks candidates among themselves, and trains eagerly, where a larger
        validation pass would cost as much as the training."""
        data = self.data()
        if budget >= 1:
            return data
        data = data.split_only()
        n = len(data.train_y)
        if self.options.budget_scales == "epochs":
            return data
        k = min(n, max(self.settings["batch_size"], round(n * budget)))
        key = (self._data_key(), k)
        if key not in _DATA:
            _DATA[key] = data.with_train_subset(k, self.options.split_seed)
        return _DATA[key]

    def build_model(self, expr: Expr, seed: int) -> BinaryResNet18:
        torch.manual_seed(seed)
        model = BinaryResNet18(expr, self.pset, width=self.settings["width"], clip=float(self.settings["clip"]))
        if self.binary_bf16:
            model.set_binary_dtype(torch.bfloat16)
        return model.to(self.device)

    def _clock(self) -> float:
        """Seconds on the clock `cost_clock` names (CPU time counts every thread of this process and the
        child processes it has waited for)."""
        return _cpu_seconds() if self.options.cost_clock == "cpu" else time.perf_counter()

    def evaluate(self, expr: Expr, *, budget: float = 1.0, seed: int = 0) -> Result:
        t0 = self._clock()
        if not (budget > 0 and math.isfinite(budget)):
            return Result.failed(f"budget must be positive, got {budget}")
        threads = torch.get_num_threads()
        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        try:
            return self._evaluate(expr, budget, seed, t0)
        finally:
            torch.set_num_threads(threads)

    def _evaluate(self, expr: Expr, budget: float, seed: int, t0: float) -> Result:
        try:
            model = self.build_model(expr, seed)
            problem = _probe(model)
        except Exception as exc:  # unknown primitive, malformed program, a constant torch cannot hold: the candidate's fault
            return Result.failed(f"cannot build the activation {expr}: {type(exc).__name__}: {exc}")
        if problem:
            return Result.failed(problem, cost=self._clock() - t0)
        data = self.data_for(budget)
        epochs = self.epochs_for(budget)
        cfg = self.train_config(epochs, images=epochs * len(data.train_y), budget=budget)
        abort = self.options.abort == "on" or (self.options.abort == "auto" and cfg.validate == "every")
        try:
            floor = self.abort_floor(epochs, data) if abort and epochs > 1 else None
            outcome = train(model, data, cfg, seed, abort_floor=floor)
        except Exception as exc:  # a candidate that breaks torch (shape, dtype, memory) must not stop the search
            return Result.failed(f"training failed: {type(exc).__name__}: {exc}", cost=self._clock() - t0)
        return self._result(outcome, model, floor, self._clock() - t0, len(data.train_y))

    def _result(self, out: Outcome, model: BinaryResNet18, floor: float | None, cost: float,
                train_images: int) -> Result:
        acc = out.curves.get("val_accuracy", [])
        metrics = {
            "epochs_run": out.epochs_run,
            "train_images": train_images,
            "wall_time": out.wall_time,
            "images_per_second": out.images_per_second,
            "compiled": int(out.compiled),
            "n_parameters": n_parameters(model),
        }
        best = out.best_epoch
        if best is not None:
            metrics.update(
                final_accuracy=out.final_accuracy, best_accuracy=acc[best - 1], best_epoch=best,
                final_loss=out.curves["train_loss"][-1], final_val_loss=out.curves["val_loss"][-1],
            )
        if floor is not None:
            metrics["abort_floor"] = floor
        if out.status == "failed":
            return Result(math.nan, FAILED, out.message, metrics, out.curves, cost)
        status = ABORTED if out.status == "aborted" else OK
        return Result(out.final_accuracy, status, out.message, metrics, out.curves, cost)

    # -- early abort ---------------------------------------------------------------------
    def abort_floor(self, epochs: int, data: CifarData | None = None) -> float:
        """First-epoch accuracy of a constant activation under this configuration and data (default:
        all the training images): measured once, cached on disk."""
        data = data if data is not None else self.data()
        key = hashlib.blake2b(
            json.dumps([self.config_key(), epochs, data.digest, torch.__version__]).encode(), digest_size=10
        ).hexdigest()
        path = cache_root() / "bnn-cifar" / "floors" / f"{key}.json"
        if str(path) in _FLOORS:
            return _FLOORS[str(path)]
        try:
            return float(json.loads(path.read_text())["floor"])
        except (OSError, ValueError, KeyError):
            pass
        # one epoch is all it trains, far too little to repay a compile
        cfg = self.train_config(epochs, images=len(data.train_y))
        out = train(self.build_model(Expr.constant(1.0), 0), data, cfg, 0, stop_after=1,
                    progress_label="abort floor (a constant activation, measured once)")
        floor = out.final_accuracy if out.status == "ok" else 10.0  # chance when even that fails
        _FLOORS[str(path)] = floor
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"floor": floor, "epochs": epochs, "settings": self.settings}))
            os.replace(tmp, path)  # atomic: concurrent workers may both measure, never half-write
        except OSError as exc:  # read-only or full disk: the floor is an optimisation, the candidate is not at fault
            warnings.warn(f"cannot cache the abort floor in {path.parent} ({type(exc).__name__}: {exc}); "
                          "each worker measures it once per process", GpengineWarning, stacklevel=2)
        return floor


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children. torch.compile on a CPU builds its
    kernels with g++ in child processes, 30-40% of a compiled quick evaluation's CPU (measured in a
    search); `time.process_time` alone would count that compile as free and favour the method that
    compiles the most candidates."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _probe(model: BinaryResNet18) -> str:
    """A reason to fail at once when the activation is NaN or infinite on a whole probe grid."""
    act = model.binary_convs()[0].act
    # the model's device, not the activation's parameters': an activation without learnable parameters
    # still holds its constants as buffers on the model's device (on a GPU, a probe on the CPU failed
    # every such candidate with "found at least two devices")
    device = next(model.parameters()).device
    x = torch.linspace(-4, 4, 257, device=device).view(1, 1, -1, 1)
    x = x.expand(1, act.channels, 257, 1)
    with torch.no_grad():
        y = act(x)
    if not torch.isfinite(y).any():
        return f"the activation {act.expr} is NaN or infinite everywhere on [-4, 4]"
    return ""


_FAST_BF16: bool | None = None


def _cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AMX or AVX512-BF16); without it bf16 is slower than fp32."""
    global _FAST_BF16
    if _FAST_BF16 is None:
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            flags = ""
        _FAST_BF16 = "amx_bf16" in flags or "avx512_bf16" in flags
    return _FAST_BF16


# torch.compile costs about 40-50 s per new activation on the 2-core CPU (training and validation
# graphs, mostly g++) and trains about 1.8x faster there at width 16, validates 3-5x faster: a
# quick-profile evaluation of the identity takes 64 s with its graph cached, 115 s compiling it
# (BENCHMARKS.md, session 5). Below about 40,000 training images the compile is not
# repaid (smoke: 4,000).
COMPILE_MIN_IMAGES = 40_000
# On an H100 (session 12) a new activation compiles in about 30-35 s, and with CUDA graphs
# (compile_mode reduce-overhead) its training step runs 3.6-5x faster than eager (about 19,000
# against 5,000 images/s at width 16, 21,500 against 6,300 at width 64): the compile is repaid
# after roughly 200,000-270,000 training images. A quick evaluation (40,000) took 41-48 s compiled
# against 20 s eager; a standard one (450,000) 64 s compiled, compile included.
COMPILE_MIN_IMAGES_GPU = 300_000
