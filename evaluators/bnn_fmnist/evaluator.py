"""bnn-fmnist: fitness of an activation = validation accuracy of a binary ResNet-18 on Fashion-MNIST.

A subclass of `BnnCifar` that swaps the data and the stem: options,
profiles (smoke, quick, standard, paper), the training loop, early abort,
the NaN probe and failure handling are inherited. Only `__init__` (which
must not look for CIFAR), `data`, `dataset` and `build_model` are its own.
The option `download` is accepted for symmetry and ignored: Fashion-MNIST
comes from Debian's dataset-fashion-mnist package or a folder of IDX files.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import torch

from evaluators.bnn_cifar import evaluator as cifar
from evaluators.bnn_cifar import profiles
from evaluators.bnn_cifar.data import CifarData
from evaluators.bnn_fmnist.data import find_fmnist, load_fmnist
from evaluators.bnn_fmnist.model import GreyBinaryResNet18
from gpengine.errors import ConfigError
from gpengine.evaluator import DatasetInfo, Evaluator
from gpengine.expr import Expr

N_TRAIN = 60_000
_DATA: dict[tuple, CifarData] = {}  # per process, like bnn-cifar's


class BnnFmnist(cifar.BnnCifar):
    """Fitness = top-1 accuracy in percent (0-100) on a held-out validation split of Fashion-MNIST."""

    description: ClassVar[str] = (
        "binary ResNet-18 on Fashion-MNIST with the expression before every sign; "
        "fitness = validation top-1 accuracy in percent (0-100)"
    )
    version: ClassVar[str] = "1"

    def __init__(self, **options: Any) -> None:
        Evaluator.__init__(self, **options)  # not BnnCifar's: it would look for CIFAR-10
        o = self.options
        if o.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("option device='cuda' but torch sees no CUDA device (use device='cpu' or 'auto')")
        self.device = "cuda" if o.device == "cuda" or (o.device == "auto" and torch.cuda.is_available()) else "cpu"
        on_gpu = self.device == "cuda"
        self.profile = profiles.resolve_profile(o.profile, on_gpu)
        self.settings = profiles.settings_from(self.profile, attrs.asdict(o))
        held = (self.settings["train_size"] or 0) + self.settings["val_size"]
        if held > N_TRAIN:
            raise ConfigError(f"train_size + val_size = {held}, but Fashion-MNIST has {N_TRAIN} training images")
        self.amp = o.amp == "on" or (o.amp == "auto" and (on_gpu or cifar._cpu_has_fast_bf16()))
        self.channels_last = o.channels_last == "on" or (o.channels_last == "auto" and on_gpu)
        self.folder = find_fmnist(o.data_dir)

    def data(self) -> CifarData:
        key = self._data_key()
        if key not in _DATA:
            s = self.settings
            loaded = load_fmnist(self.folder, s["train_size"], s["val_size"], self.options.split, self.options.split_seed)
            _DATA[key] = loaded.to(torch.device(self.device))
        return _DATA[key]

    def dataset(self) -> DatasetInfo:
        d = self.data()
        return DatasetInfo(
            name=f"Fashion-MNIST ({d.eval_split} split)",
            digest=d.digest,
            source=str(self.folder),
            n_train=len(d.train_y),
            n_validation=len(d.eval_y),
        )

    def build_model(self, expr: Expr, seed: int) -> GreyBinaryResNet18:
        torch.manual_seed(seed)
        model = GreyBinaryResNet18(expr, self.pset, width=self.settings["width"], clip=float(self.settings["clip"]))
        return model.to(self.device)
