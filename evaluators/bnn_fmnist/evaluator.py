"""bnn-fmnist: fitness of an activation = validation accuracy of a binary ResNet-18 on Fashion-MNIST.

A subclass of `BnnCifar` that swaps the data and the stem: options,
profiles (smoke, quick, standard, paper), the training loop, early abort,
the NaN probe, data caching and failure handling are inherited. Only finding
and loading the data (`_find_data`, `_load`) and `build_model` are its own.
The option `download` is accepted for symmetry and ignored: Fashion-MNIST
comes from Debian's dataset-fashion-mnist package or a folder of IDX files.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from evaluators.bnn_cifar import evaluator as cifar
from evaluators.bnn_cifar.data import CifarData
from evaluators.bnn_fmnist.data import find_fmnist, load_fmnist
from evaluators.bnn_fmnist.model import GreyBinaryResNet18
from gpengine.expr import Expr

N_TRAIN = 60_000


class BnnFmnist(cifar.BnnCifar):
    """Fitness = top-1 accuracy in percent (0-100) on a held-out validation split of Fashion-MNIST."""

    description: ClassVar[str] = (
        "binary ResNet-18 on Fashion-MNIST with the expression before every sign; "
        "fitness = validation top-1 accuracy in percent (0-100)"
    )
    version: ClassVar[str] = "1"
    dataset_name: ClassVar[str] = "Fashion-MNIST"
    n_train_images: ClassVar[int] = N_TRAIN

    def _find_data(self):
        return find_fmnist(self.options.data_dir)

    def _load(self) -> CifarData:
        s = self.settings
        return load_fmnist(self.folder, s["train_size"], s["val_size"], self.options.split, self.options.split_seed,
                           s["final_val_size"])

    def build_model(self, expr: Expr, seed: int) -> GreyBinaryResNet18:
        torch.manual_seed(seed)
        model = GreyBinaryResNet18(expr, self.pset, width=self.settings["width"], clip=float(self.settings["clip"]))
        return model.to(self.device)
