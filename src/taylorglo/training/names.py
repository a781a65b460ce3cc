"""The built-in datasets' and models' names, without their code (or torch): what a config is
checked against when it is only read, and what error messages list."""

from __future__ import annotations

DATASET_NAMES: tuple[str, ...] = (
    "digits",
    "breast-cancer",
    "wine",
    "mnist",
    "fashion-mnist",
    "cifar10",
    "cifar100",
    "svhn",
)

#: The built-in names as the SPEC's model table uses them; ``resnetN``, ``preresnetN`` and
#: ``wrn-D-K`` also accept other valid depths/widths.
MODEL_NAMES: tuple[str, ...] = (
    "mlp",
    "mnist-cnn",
    "allcnnc",
    "resnet20",
    "resnet32",
    "resnet56",
    "preresnet20",
    "wrn-16-8",
    "wrn-28-5",
    "alexnet",
    "pyramidnet110-a48",
    "densenet-bc-100-12",
    "fixup-resnet20",
)
