"""What the reference's configs name, in taylorglo's terms: its targets, models and their defaults.

The reference (``LossferatuRunner``'s ``TrainingConfig``) fixed per target and model what a config
does not say: the full training schedule a search's partial run is a share of, the weight decay,
the batch size. They are tabled here as data, one row per name, so the translation
(:mod:`.translate`) is a loop over rows rather than a branch per model, and a model taylorglo
gains is one row more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The reference's targets taylorglo has, by the reference's name.
DATASETS = {"mnist": "mnist", "cifar10": "cifar10", "cifar100": "cifar100", "svhn": "svhn"}
#: Targets it does not have, and why.
MISSING_DATASETS = {
    "aircraft": "FGVC-Aircraft is not in taylorglo",
    "crispr": "CRISPR is a regression task; taylorglo searches classification losses only",
    "squad2": "SQuAD needs a transformer question-answering trainer, which taylorglo does not have",
}
GLUE = "GLUE tasks need the reference's transformer trainer, which taylorglo does not have"


@dataclass(frozen=True)
class Model:
    """A reference model name as taylorglo builds it, with the reference's defaults for it."""

    name: str  # taylorglo's model name
    full_epochs: int  # the reference's full schedule (``fullTrainingEpochs``)
    weight_decay: float
    options: dict[str, Any] = field(default_factory=dict)
    #: Options that depend on the target (the Wide ResNets' dropout: 0.4 on SVHN, 0.3 elsewhere).
    svhn_options: dict[str, Any] | None = None
    svhn_full_epochs: int | None = None
    #: Whether the reference's trainer gave it auxiliary classifiers (``auxiliaryClassifiers``)
    #: and replaced its activations (``overrideActivationFunction``); it ignored the latter elsewhere.
    aux: bool = False
    activation: bool = False


def _wrn(depth: int, widen: int) -> Model:
    return Model(
        f"wrn-{depth}-{widen}", 200, 5e-4, {"dropout": 0.3}, {"dropout": 0.4}, svhn_full_epochs=160, activation=True
    )


#: The networks as the reference's trainer built them (taylorglo.training.reference_models).
REFERENCE = {"variant": "reference"}


def _resnet(depth: int, pre: bool) -> Model:
    # The reference's CIFAR ResNets project their shortcuts (1x1 convolution and BatchNorm):
    # taylorglo's option B, which its pre-activation ResNet has as the paper's.
    return Model(
        f"{'preresnet' if pre else 'resnet'}{depth}",
        200,
        1e-4,
        {"shortcut": "B"} if pre else REFERENCE,
        aux=pre,
        activation=pre,
    )


MODELS: dict[str, Model] = {
    "allcnnc": Model("allcnnc", 350, 1e-3, REFERENCE, aux=True, activation=True),
    "alexnet": Model("alexnet", 164, 5e-4),
    **{f"resnet{d}": _resnet(d, False) for d in (20, 32, 56)},
    **{f"pre_resnet{d}": _resnet(d, True) for d in (20, 32, 56)},
    "wrn168": _wrn(16, 8),
    "wrn1016": _wrn(10, 16),
    "wrn226": _wrn(22, 6),
    "wrn285": _wrn(28, 5),
    "wrn2810": _wrn(28, 10),
    **{f"noskip_resnet{d}": Model(f"resnet{d}", 200, 1e-4, {**REFERENCE, "shortcut": "none"}) for d in (20, 32, 56)},
    **{f"fixup_resnet{d}": Model(f"fixup-resnet{d}", 200, 1e-4) for d in (20, 32, 56)},
    "pyramidnet110a48": Model("pyramidnet110-a48", 300, 1e-4),
    "pyramidnetb110a48": Model("pyramidnet110-a48-bottleneck", 300, 1e-4),
    "densenetbc100k12": Model("densenet-bc-100-12", 300, 1e-4),
    "densenetbc250k24": Model("densenet-bc-250-24", 300, 1e-4),
}
#: Reference models taylorglo does not build, and why.
MISSING_MODELS = {
    "deepbind": "DeepBind is the CRISPR regression model; taylorglo searches classification losses only",
    "transformer_bert_base_cased": GLUE,
    "transformer_distilbert_base_cased": GLUE,
}  # fmt: skip

#: MNIST before the reference's schema had ``model``: the TensorFlow tutorial CNN, trained in
#: steps of batch 100 for 20,000 steps (SPEC §3).
MNIST_MODEL = Model("mnist-cnn", 40, 0.0)
MNIST_FULL_STEPS = 20_000
MNIST_BATCH = 100
#: The reference's batch sizes for image classification: training, evaluation.
BATCH, EVAL_BATCH = 128, 100

#: The reference's ``overrideActivationFunction`` expressions (whitespace removed) as taylorglo's
#: activations (:mod:`taylorglo.training.activations`).
ACTIVATIONS = {
    "x*tf.sigmoid(x)": "swish",
    "x*torch.sigmoid(x)": "swish",
    "tf.log(tf.sigmoid(x))": "logsigmoid",
    "torch.log(torch.sigmoid(x))": "logsigmoid",
    "nn.Softplus()(nn.ELU()(x))": "softplus-elu",
    "tf.relu(x)": "relu",
    "torch.relu(x)": "relu",
    "tf.tanh(x)": "tanh",
    "torch.tanh(x)": "tanh",
}
#: The reference's trainer built auxiliary classifiers in twos only.
AUX_HEADS = 2

#: Metrics taylorglo measures, on the splits it measures them on.
METRICS = ("accuracy", "loss")
SPLITS = ("validation", "testing")
#: The loss inputs a TaylorGLO loss of taylorglo's takes (the reference's default ``inputVariables``).
DEFAULT_INPUTS = ["trueLabel", "scaledLogits"]
#: Its ``inputVariables`` names → ``training.loss_inputs`` names (residuals, a regression input,
#: and the delimiter between several losses have none).
INPUT_NAMES = {"trueLabel": "x", "scaledLogits": "y", "unscaledLogits": "logits", "trainingCompleted": "t"}
