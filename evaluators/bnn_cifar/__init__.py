"""bnn-cifar: binary ResNet-18 on CIFAR-10 with the evolved activation before every sign (GAAF)."""

from evaluators.bnn_cifar.evaluator import BnnCifar

__all__ = ["BnnCifar"]
