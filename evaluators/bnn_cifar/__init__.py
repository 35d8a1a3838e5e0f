"""bnn-cifar: binary ResNet-18 on CIFAR-10 with the evolved activation before every sign (GAAF).

OpenMP threads that spin while waiting make torch 5-10x slower on a CPU shared
with other processes (measured on the 2-core dev machine: 33 against 233
images/s); passive waiting costs little when the machine is idle. The
default is set here, before torch loads its OpenMP runtime in a worker; a
value the user set wins.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from evaluators.bnn_cifar.evaluator import BnnCifar  # noqa: E402

__all__ = ["BnnCifar"]
