"""``azureml.train.dnn``: the deep-learning estimators (``PyTorch``, ``TensorFlow``, ``Chainer``), see estimator.py."""

from __future__ import annotations

from typing import Any

from .estimator import Chainer as Chainer
from .estimator import PyTorch as PyTorch
from .estimator import TensorFlow as TensorFlow
from .runconfig import MpiConfiguration as MpiConfiguration
from .runconfig import PyTorchConfiguration as PyTorchConfiguration
from .runconfig import TensorflowConfiguration as TensorflowConfiguration
from .unsupported import module_getattr

#: v1's names for the distributed configurations, kept in azureml.train.dnn
Mpi = MpiConfiguration
ParameterServer = TensorflowConfiguration
Nccl = Gloo = PyTorchConfiguration


def __getattr__(name: str) -> Any:
    module_getattr("azureml.train.dnn", name)


__all__ = [
    "Chainer",
    "Gloo",
    "Mpi",
    "MpiConfiguration",
    "Nccl",
    "ParameterServer",
    "PyTorch",
    "PyTorchConfiguration",
    "TensorFlow",
    "TensorflowConfiguration",
]
