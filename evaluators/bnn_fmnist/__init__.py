"""bnn-fmnist: GAAF's binary ResNet-18 on Fashion-MNIST, reusing bnn-cifar's parts.

The second real evaluator, there to prove the plugin interface is not shaped
around CIFAR: only the data loader and the stem are its own; the binary
blocks, the compiled activation, the training loop, the profiles, the early
abort and the failure handling are bnn-cifar's, imported, not copied.
Passive OpenMP waiting by default, for the reason given in bnn_cifar.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from evaluators.bnn_fmnist.evaluator import BnnFmnist  # noqa: E402

__all__ = ["BnnFmnist"]
