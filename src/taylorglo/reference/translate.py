"""The reference's experiment configs (JSON, ``cognizant-ai-labs/TaylorGLO`` ``experiments/``) as
taylorglo configs: ``taylorglo init DIR reference.json`` and ``taylorglo convert reference.json``.

:func:`translate` walks every field of a reference config and either maps it onto taylorglo's
fields (saying how, in one line), notes that it has no bearing on a taylorglo run (the job
scheduler's retries), or refuses it in one line naming the field and why. Every field is
accounted for: one the reference's schema does not have is refused too, so nothing is dropped
without a word. What a config leaves unsaid is filled with the reference's own defaults for its
target and model (:mod:`.schema`), written out in the translation, so a taylorglo default never
silently stands in for one of the reference's.

A search config's ``epochs`` is its candidates' *partial* run (35 of AllCNN-C's 350): the full
schedule is the reference's for that model, and the share becomes ``search.partial_fraction``.
Torch-free: it only reads text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import TaylorGLOError
from ..polynomial import SUPPORTED_ORDERS
from .loss_strings import NotALoss, read_losses
from .schema import (
    ACTIVATIONS,
    AUX_HEADS,
    BATCH,
    DATASETS,
    DEFAULT_INPUTS,
    EVAL_BATCH,
    GLUE,
    INPUT_NAMES,
    METRICS,
    MISSING_DATASETS,
    MISSING_MODELS,
    MNIST_BATCH,
    MNIST_FULL_STEPS,
    MNIST_MODEL,
    MODELS,
    SPLITS,
    Model,
)

BASE = "evaluation.baseTrainingConfig"
#: The decimals the reference rendered a loss's parameters with, into the formula it trained.
ROUND_DECIMALS = 4
#: Its trainer's early abort: validation accuracy below 0.15 after the 11th epoch.
ABORT_EPOCHS, ABORT_BELOW = 11, 0.15


@dataclass
class Translation:
    """A reference config in taylorglo's terms: the config (tables as ``init`` reads them), and
    per field how it was mapped, why it has no bearing here, or why it cannot be translated."""

    source: str
    config: dict[str, Any] = field(default_factory=dict)
    mapped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused

    def error(self) -> ReferenceConfigRefused:
        return ReferenceConfigRefused(self)


class ReferenceConfigRefused(TaylorGLOError):
    """A reference config with fields taylorglo cannot translate: one line per field
    (:attr:`lines`), printed one under the other by the CLI."""

    def __init__(self, translation: Translation) -> None:
        self.lines = [f"{translation.source}: {line}" for line in translation.refused]
        super().__init__(self.lines[0] + (f" (and {len(self.lines) - 1} more)" if len(self.lines) > 1 else ""))


def is_reference_config(data: Any) -> bool:
    """Whether parsed config ``data`` is in the reference's schema (it has
    ``evaluation.baseTrainingConfig``, which no taylorglo config has)."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("evaluation"), dict)
        and "baseTrainingConfig" in data["evaluation"]
    )


def read_reference_json(text: str) -> Any:
    """Parse a reference config as its own reader did: trailing commas before ``}``/``]``
    allowed, and text after the object (some files carry a formula there) ignored."""
    cleaned = re.sub(r",(\s*[}\]])", r"\1", text)
    value, _ = json.JSONDecoder().raw_decode(cleaned.lstrip())
    return value


class _Table:
    """One table of the reference config: its fields are taken one by one, and whatever is left
    untaken is refused as unknown (so no field goes unmentioned)."""

    def __init__(self, value: Any, path: str, out: Translation) -> None:
        self.path, self.out = path, out
        self.values: dict[str, Any] = value if isinstance(value, dict) else {}
        if not isinstance(value, dict):
            out.refused.append(f"{path}: must be a table, got {json.dumps(value)[:60]}")
        self.taken: set[str] = set()

    def take(self, key: str, default: Any = None) -> Any:
        self.taken.add(key)
        return self.values.get(key, default)

    def has(self, key: str) -> bool:
        return key in self.values

    def table(self, key: str) -> _Table:
        self.taken.add(key)
        return _Table(self.values.get(key, {}), self.name(key), self.out)

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def refuse(self, key: str, why: str) -> None:
        self.out.refused.append(f"{self.name(key)}: {why}")

    def map(self, key: str, line: str) -> None:
        self.out.mapped.append(f"{self.name(key)} = {json.dumps(self.values.get(key))[:80]} -> {line}")

    def note(self, key: str, line: str) -> None:
        self.out.notes.append(f"{self.name(key)} = {json.dumps(self.values.get(key))[:80]}: {line}")

    def positive(self, key: str, training: dict[str, Any], field: str, default: Any = None) -> None:
        """The positive number at ``key`` as ``training.<field>`` (mapped), else refused."""
        value = self.take(key, default)
        if isinstance(value, (int, float)) and value > 0:
            training[field] = float(value)
            self.map(key, f"training.{field}")
        else:
            self.refuse(key, f"must be a positive number, got {json.dumps(value)}")

    def finish(self) -> None:
        for key in self.values:
            if key not in self.taken:
                self.refuse(key, "not a field of the reference's schema that taylorglo knows; remove it")


def translate(data: Any, source: str = "config") -> Translation:
    """``data`` (a parsed reference config) as a taylorglo config; see the module docstring."""
    out = Translation(source)
    top = _Table(data, "", out)
    kind = top.take("kind")
    if kind not in ("generational", "oneShot"):
        top.refuse("kind", f'must be "generational" or "oneShot", got {json.dumps(kind)}')
        top.taken.update(top.values)
        return out
    search = kind == "generational"
    config: dict[str, Any] = {"kind": "taylorglo" if search else "oneshot", "profile": "reference"}
    top.map("kind", f'kind = "{config["kind"]}"')
    name = top.take("name")
    if isinstance(name, str) and name.strip():
        config["name"] = name.strip()
        top.map("name", "name")
    elif top.has("name"):
        top.refuse("name", "must be a non-empty string")

    evaluation = top.table("evaluation")
    base = evaluation.table("baseTrainingConfig")
    training, settings = _training(base, search, out)
    _evaluation(evaluation, settings, search)
    evaluation.finish()
    if search:
        _evolution(top.table("evolution"), settings)
        _experiment(top.table("experiment"), settings, training)
    else:
        for key in ("evolution", "experiment"):
            if top.has(key):
                top.take(key)
                top.note(key, "a one-shot experiment evolves nothing: not used")
    top.finish()
    seed = base.values.get("seed", base.values.get("initializationSeed"))
    if seed is not None:
        config["seed"] = seed
    config["training"] = training
    config["search" if search else "oneshot"] = settings
    config["evaluator"] = {"kind": "local"}
    out.config = config
    return out


def _training(base: _Table, search: bool, out: Translation) -> tuple[dict[str, Any], dict[str, Any]]:
    """``[training]`` and the kind's table from ``baseTrainingConfig``."""
    training: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    target = base.take("target")
    dataset = DATASETS.get(target) if isinstance(target, str) else None
    if dataset is not None:
        training["dataset"] = dataset
        base.map("target", f'training.dataset = "{dataset}"')
    elif isinstance(target, str) and (target in MISSING_DATASETS or target.startswith("glue_")):
        base.refuse("target", MISSING_DATASETS.get(target, GLUE))
    elif target == "cifar10ResNet":
        base.refuse(
            "target",
            "the first schema's CIFAR-10 ResNet, whose depth it does not record: "
            'write target = "cifar10" and the model (resnet20, resnet32, ...)',
        )
    else:
        base.refuse("target", f"unknown target {json.dumps(target)}; taylorglo has {', '.join(DATASETS)}")

    model = _model(base, dataset)
    legacy = base.has("steps") or base.has("initialLearningRate")  # the schema before epochs and schedules
    if model is not None:
        training["model"] = model.name
        options = dict(model.svhn_options if dataset == "svhn" and model.svhn_options else model.options)
        if options:
            training["model_options"] = options
        decay = base.take("overrideWeightDecay")
        if decay is not None:
            training["weight_decay"] = decay
            base.map("overrideWeightDecay", "training.weight_decay")
        else:
            training["weight_decay"] = model.weight_decay
        training["batch_size"] = MNIST_BATCH if legacy and dataset == "mnist" else BATCH
        training["eval_batch_size"] = EVAL_BATCH
        # The reference trained every loss as it rendered it: its parameters to 4 decimals.
        training["round_params"] = ROUND_DECIMALS
    if legacy:
        _legacy_schedule(base, search, dataset, training, settings)
    elif model is not None:
        _schedule(base, search, model, dataset, training, settings)
    else:  # the schedule is the model's share: nothing to say about it without one
        base.taken.update({"epochs", "learningRateSchedule"})

    fraction = base.take("trainingDatasetPercentage", 1.0)
    if isinstance(fraction, (int, float)) and 0 < fraction <= 1:
        if fraction != 1:
            training["data_fraction"] = float(fraction)
        base.map("trainingDatasetPercentage", "training.data_fraction (a fixed subset of the training split)")
    else:
        base.refuse("trainingDatasetPercentage", f"must be a number in (0, 1], got {json.dumps(fraction)}")

    attempts = base.take("trainingAttempts", 1)
    if isinstance(attempts, int) and attempts >= 1:
        training["attempts"] = attempts
        if base.has("trainingAttempts"):
            base.map("trainingAttempts", "training.attempts (the reference's default is 1)")
    else:
        base.refuse("trainingAttempts", f"must be a positive integer, got {json.dumps(attempts)}")

    cutout = base.table("cutout")
    if base.has("cutout"):
        holes, length = cutout.take("numberHoles", 1), cutout.take("length")
        if holes != 1:
            cutout.refuse("numberHoles", "taylorglo's Cutout cuts one hole; set it to 1")
        if isinstance(length, int) and length > 0:
            training["cutout"] = length
            base.map("cutout", "training.cutout (one hole of that size)")
        else:
            cutout.refuse("length", f"must be a positive integer, got {json.dumps(length)}")
        cutout.finish()

    mix = base.table("cutmix")
    if base.has("cutmix"):
        alpha, probability = mix.take("alpha", 1.0), mix.take("probability", 0.5)
        if not (isinstance(probability, (int, float)) and 0 < probability <= 1):
            mix.refuse("probability", f"must be a number in (0, 1], got {json.dumps(probability)}")
        elif not (isinstance(alpha, (int, float)) and alpha > 0):
            mix.refuse("alpha", f"must be a positive number, got {json.dumps(alpha)}")
        else:
            training["cutmix"], training["cutmix_alpha"] = float(probability), float(alpha)
            base.map("cutmix", "training.cutmix (the share of batches mixed), training.cutmix_alpha")
        mix.finish()

    fgsm = base.table("fgsm")
    if base.has("fgsm"):
        epsilon = fgsm.take("epsilon")
        fgsm.finish()
        if not search:
            base.refuse(
                "fgsm",
                "a one-shot run measured under FGSM: run `taylorglo robustness DIR` on its saved networks instead",
            )
        elif isinstance(epsilon, (int, float)) and 0 < epsilon <= 1:
            settings["fitness"], settings["fgsm_epsilon"] = "fgsm", float(epsilon)
            base.map("fgsm", 'search.fitness = "fgsm", search.fgsm_epsilon (validation accuracy under FGSM)')
            out.notes.append(
                "fgsm: the reference stepped and clamped the normalised image; taylorglo attacks pixels. "
                'training.attack_space = "normalized" reproduces the reference\'s numbers'
            )
        else:
            base.refuse("fgsm", f"epsilon must be a number in (0, 1], got {json.dumps(epsilon)}")

    if "epochs" in training and settings.get("fitness") != "fgsm":
        # Its trainer checked validation accuracy after epoch index 10 (the 11th epoch), except
        # under FGSM, and scored an aborted run by that accuracy; retries were trainingAttempts.
        training.update(abort_at=ABORT_EPOCHS, abort_below=ABORT_BELOW, abort_fitness="measured")
        out.notes.append(
            f"early abort as the reference's trainer did it: training.abort_at = {ABORT_EPOCHS} (epochs), "
            f'abort_below = {ABORT_BELOW}, abort_fitness = "measured"'
        )

    _network_body(base, model, training)
    for key, why in (
        ("baseModelS3Tar", "taylorglo trains from scratch; fine-tuning a stored model is not supported"),
        ("startEpoch", "taylorglo trains from scratch; fine-tuning a stored model is not supported"),
        ("evaluationGridConfig", "loss-landscape grids are not in taylorglo"),
    ):
        if base.has(key):
            base.take(key)
            base.refuse(key, why)
    optimizer = base.take("overrideOptimizer")
    if optimizer in ("SGD", "Adam"):
        training["optimizer"] = optimizer.lower()
        base.map("overrideOptimizer", "training.optimizer")
    elif optimizer is not None:
        base.refuse("overrideOptimizer", f'taylorglo trains with "SGD" or "Adam", got {json.dumps(optimizer)}')
    if base.has("evaluationStoreLossActivations"):
        base.take("evaluationStoreLossActivations")
        base.note("evaluationStoreLossActivations", "a logging option of the reference's trainer: not used")
    for key in ("seed", "initializationSeed"):  # the second, the first schema's name for it
        if base.has(key):
            base.take(key)
            base.map(key, "seed")

    _loss(base, search, settings, training)
    base.finish()
    return training, settings


def _network_body(base: _Table, model: Model | None, training: dict[str, Any]) -> None:
    """``auxiliaryClassifiers`` and ``overrideActivationFunction`` as the model's options."""
    options = training.setdefault("model_options", {})
    heads = base.take("auxiliaryClassifiers", 0)
    if heads == AUX_HEADS and model is not None and model.aux:
        options["aux_heads"] = True
        base.map("auxiliaryClassifiers", "training.model_options.aux_heads = true (two auxiliary classifier heads)")
    elif heads == AUX_HEADS and model is not None:
        base.refuse(
            "auxiliaryClassifiers", "the reference's trainer gave auxiliary classifiers to allcnnc and pre_resnetN only"
        )
    elif heads not in (0, AUX_HEADS):
        base.refuse(
            "auxiliaryClassifiers",
            f"the reference's trainer built 0 or 2 auxiliary classifiers, got {json.dumps(heads)}",
        )
    elif base.has("auxiliaryClassifiers") and heads == 0:
        base.note("auxiliaryClassifiers", "0: no auxiliary classifiers")
    text = base.take("overrideActivationFunction")
    if text is not None:
        name = ACTIVATIONS.get("".join(text.split())) if isinstance(text, str) else None
        if name is None:
            base.refuse(
                "overrideActivationFunction",
                f"taylorglo reads the reference's activations {', '.join(sorted(ACTIVATIONS))}, got {json.dumps(text)}",
            )
        elif model is not None and not model.activation:
            base.note("overrideActivationFunction", "the reference's trainer ignored it for this model: not used")
        elif model is not None:
            options["activation"] = name
            base.map("overrideActivationFunction", f'training.model_options.activation = "{name}"')
    if not options:
        del training["model_options"]


def _model(base: _Table, dataset: str | None) -> Model | None:
    name = base.take("model")
    if name is None:
        if dataset == "mnist":  # before the schema had models, MNIST meant the TensorFlow tutorial CNN
            base.out.mapped.append(
                f"{base.name('model')} (none: the first schema's MNIST network) -> "
                f'training.model = "{MNIST_MODEL.name}"'
            )
            return MNIST_MODEL
        base.refuse("model", "missing; name the reference's model (allcnnc, resnet20, wrn168, ...)")
        return None
    if isinstance(name, str) and name in MODELS:
        model = MODELS[name]
        base.map("model", f'training.model = "{model.name}"' + (f" {model.options}" if model.options else ""))
        return model
    if isinstance(name, str) and name in MISSING_MODELS:
        base.refuse("model", MISSING_MODELS[name])
    else:
        base.refuse("model", f"unknown model {json.dumps(name)}; taylorglo builds {', '.join(MODELS)}")
    return None


def _schedule(
    base: _Table, search: bool, model: Model, dataset: str | None, training: dict[str, Any], settings: dict[str, Any]
) -> None:
    """``epochs`` and ``learningRateSchedule``: a search's epochs are the partial run."""
    epochs = base.take("epochs")
    full = model.svhn_full_epochs if dataset == "svhn" and model.svhn_full_epochs else model.full_epochs
    if not (isinstance(epochs, (int, float)) and epochs > 0):
        base.refuse("epochs", f"must be a positive number, got {json.dumps(epochs)}")
    elif search:
        training["epochs"] = full
        settings["partial_fraction"] = min(1.0, epochs / full)
        base.map(
            "epochs",
            f"search.partial_fraction = {settings['partial_fraction']:g} of training.epochs = {full} "
            f"(the reference's full {model.name} schedule)",
        )
    else:
        training["epochs"] = epochs
        base.map("epochs", "training.epochs")
    schedule = base.table("learningRateSchedule")
    schedule.positive("initial", training, "lr")
    milestones = schedule.take("decayEpochs", [])
    if isinstance(milestones, list) and all(isinstance(m, (int, float)) and m > 0 for m in milestones):
        training["lr_decay"] = list(milestones)
        schedule.map("decayEpochs", "training.lr_decay (epochs)")
    else:
        schedule.refuse("decayEpochs", f"must be a list of positive epochs, got {json.dumps(milestones)}")
    schedule.positive("decayEpochGamma", training, "lr_gamma", default=0.1)
    every = schedule.take("everyEpochGamma", 1.0)
    if every != 1:
        schedule.refuse("everyEpochGamma", "a decay at every epoch is not in taylorglo; only 1.0 (none) is")
    else:
        schedule.note("everyEpochGamma", "no decay at every epoch, as in taylorglo")
    schedule.finish()


def _legacy_schedule(
    base: _Table, search: bool, dataset: str | None, training: dict[str, Any], settings: dict[str, Any]
) -> None:
    """The first schema's ``steps`` and ``initialLearningRate`` (the MNIST configs): a search's
    steps are the partial run of MNIST's 20,000 (SPEC §3)."""
    steps = base.take("steps")
    base.positive("initialLearningRate", training, "lr")
    if not (isinstance(steps, int) and steps > 0):
        base.refuse("steps", f"must be a positive integer (a run of no steps trains nothing), got {json.dumps(steps)}")
    elif search and dataset == "mnist":
        training["steps"] = MNIST_FULL_STEPS
        settings["partial_fraction"] = min(1.0, steps / MNIST_FULL_STEPS)
        base.map(
            "steps",
            f"search.partial_fraction = {settings['partial_fraction']:g} of training.steps = {MNIST_FULL_STEPS} "
            "(the reference's full MNIST schedule)",
        )
    else:
        training["steps"] = steps
        base.map("steps", "training.steps")


def _loss(base: _Table, search: bool, settings: dict[str, Any], training: dict[str, Any]) -> None:
    text = base.take("lossFunction")
    if text is None:
        if not search:
            base.refuse("lossFunction", "missing: a one-shot run trains this loss")
        return
    try:
        losses = read_losses(text)
    except NotALoss as exc:
        base.refuse("lossFunction", str(exc))
        return
    heads = AUX_HEADS if training.get("model_options", {}).get("aux_heads") else 0
    if len(losses) != 1 + heads:
        base.refuse(
            "lossFunction",
            f"holds {len(losses)} loss{'es' if len(losses) > 1 else ''} but the network has {1 + heads} "
            "output"
            + (f"s (its class logits and {heads} auxiliary classifiers)" if heads else " (its class logits)")
            + ": give one loss per output, separated by ===",
        )
        return
    loss, aux = losses[0], losses[1:]
    if loss.weight != 1.0:
        base.refuse(
            "lossFunction", f"its first loss is {loss.weight:g} x cross-entropy; the class logits' loss has no weight"
        )
        return
    if aux:
        training["aux_losses"] = [a.spec for a in aux]
        training["aux_weights"] = [a.weight for a in aux]
        base.out.mapped.append(
            f"{base.name('lossFunction')} (the auxiliary classifiers' losses, after ===) -> training.aux_losses = "
            f"{json.dumps(training['aux_losses'])}, training.aux_weights = {json.dumps(training['aux_weights'])}"
        )
    if search:
        if loss.params is not None:
            base.refuse("lossFunction", "a search's base loss must be cross-entropy; each candidate brings its own")
        else:
            base.note("lossFunction", "a search's base loss: each candidate trains its own, final compares with it")
        return
    settings["losses"] = [loss.spec]
    settings["repeats"] = 1
    dropped = " (its terms without loss_y, which carry no gradient, dropped)" if loss.dropped else ""
    base.map(
        "lossFunction",
        f"oneshot.losses = [{loss.spec!r}]{dropped}; oneshot.repeats = 1, one training as in the reference",
    )


def _evaluation(evaluation: _Table, settings: dict[str, Any], search: bool) -> None:
    if evaluation.has("evaluator"):
        evaluation.take("evaluator")
        evaluation.map("evaluator", 'evaluator.kind = "local" (taylorglo\'s worker processes; "ray" for a cluster)')
    metrics = evaluation.take("evaluatedMetrics", [])
    if not isinstance(metrics, list) or not metrics:
        evaluation.refuse("evaluatedMetrics", "must be a list of {metric, dataset} tables")
    else:
        for i, m in enumerate(metrics):
            metric, split = (m.get("metric"), m.get("dataset")) if isinstance(m, dict) else (None, None)
            if metric not in METRICS or split not in SPLITS or set(m) - {"metric", "dataset"}:
                evaluation.refuse(
                    f"evaluatedMetrics[{i}]",
                    f"taylorglo measures {' and '.join(METRICS)} on {' and '.join(SPLITS)}, got {json.dumps(m)}",
                )
        evaluation.note("evaluatedMetrics", "taylorglo measures accuracy and loss on validation and test data always")
    if evaluation.has("maximumJobSubmissionRetries"):
        evaluation.take("maximumJobSubmissionRetries")
        evaluation.note(
            "maximumJobSubmissionRetries",
            "the reference's job queue retried submissions; taylorglo's workers take jobs directly",
        )


def _evolution(evolution: _Table, settings: dict[str, Any]) -> None:
    generations = evolution.take("maxGenerations")
    if isinstance(generations, int) and generations >= 1:
        settings["generations"] = generations
        evolution.map("maxGenerations", "search.generations")
    elif evolution.has("maxGenerations"):
        evolution.refuse("maxGenerations", f"must be a positive integer, got {json.dumps(generations)}")
    fitness = evolution.table("fitnessMetric")
    metric, split = fitness.take("metric"), fitness.take("dataset")
    if evolution.has("fitnessMetric"):
        if (metric, split) != ("accuracy", "validation"):
            evolution.refuse("fitnessMetric", f"taylorglo's fitness is validation accuracy, got {metric} on {split}")
        else:
            evolution.map("fitnessMetric", "the fitness: validation accuracy (under FGSM where the config attacks)")
    fitness.finish()
    if evolution.has("maximumMissingEvaluations"):
        missing = evolution.take("maximumMissingEvaluations")
        if missing != 0:
            evolution.refuse(
                "maximumMissingEvaluations", "taylorglo waits for every candidate of a generation; only 0 is supported"
            )
        else:
            evolution.note("maximumMissingEvaluations", "every candidate is waited for, as in taylorglo")
    evolution.finish()


def _experiment(experiment: _Table, settings: dict[str, Any], training: dict[str, Any]) -> None:
    kind = experiment.take("kind")
    if kind != "gloTaylorClassification":
        experiment.refuse(
            "kind", f"taylorglo runs TaylorGLO (gloTaylorClassification) searches, got {json.dumps(kind)}"
        )
    else:
        experiment.map("kind", "a TaylorGLO search")
    if experiment.has("treeGloConfig"):
        experiment.take("treeGloConfig")
        experiment.refuse("treeGloConfig", "GLO's tree search is not in taylorglo")
    glo = experiment.table("taylorGloConfig")
    for key, target in (("populationSize", "population"), ("sigma", "sigma"), ("order", "order")):
        value = glo.take(key)
        if value is None:
            continue
        if key == "order" and value not in SUPPORTED_ORDERS:
            glo.refuse(key, f"taylorglo's losses have orders {', '.join(map(str, SUPPORTED_ORDERS))}, got {value}")
            continue
        settings[target] = value
        glo.map(key, f"search.{target}")
    if glo.take("evolveLearningRate", False):
        glo.refuse(
            "evolveLearningRate", 'a search evolves the loss only; EPBT (kind = "epbt") evolves the learning rate'
        )
    elif glo.has("evolveLearningRate"):
        glo.note("evolveLearningRate", "the learning rate is not evolved, as in a taylorglo search")
    ignore = glo.take("ignoreInvariantCheck", False)
    settings["invariant"] = "reference"
    if ignore:  # the reference still checked every candidate, and trained the violators tagged
        settings["invariant_violators"] = "train"
    if glo.has("ignoreInvariantCheck"):
        glo.map(
            "ignoreInvariantCheck",
            'search.invariant = "reference"'
            + (', search.invariant_violators = "train" (checked and tagged, trained all the same)' if ignore else ""),
        )
    inputs = glo.take("inputVariables")
    if inputs is not None and inputs != DEFAULT_INPUTS:
        given = json.dumps(inputs)[:80]
        names = [INPUT_NAMES.get(v) for v in inputs] if isinstance(inputs, list) else [None]
        if isinstance(inputs, list) and "lossFunctionDelimiter" in inputs:
            glo.refuse(
                "inputVariables",
                f"evolves {inputs.count('lossFunctionDelimiter') + 1} losses at once (one per network output, "
                "or one per CutMix label); a taylorglo search evolves one loss, the auxiliary heads' stay fixed "
                "(training.aux_losses)",
            )
        elif None in names or len(set(names)) != len(names) or not {"x", "y"} <= set(names):
            glo.refuse(
                "inputVariables",
                f"taylorglo's losses take trueLabel and scaledLogits, and may add unscaledLogits and "
                f"trainingCompleted, each once (not residuals, nor several losses), got {given}",
            )
        else:
            training["loss_inputs"] = [v for v in ("x", "y", "logits", "t") if v in names]
            glo.map("inputVariables", f"training.loss_inputs = {json.dumps(training['loss_inputs'])}")
            if "t" in names:
                glo.note(
                    "inputVariables",
                    "trainingCompleted: taylorglo feeds the share of the full schedule done; the reference's "
                    "trainer computed full_run_epochs / full_run_epochs, i.e. 1 throughout training",
                )
    elif inputs is not None:
        glo.note("inputVariables", "the label and the softmax output, taylorglo's loss inputs")
    for key in (
        "evolvedLearningRateDecayPoints",
        "evolvedLearningRateDecayPointRepresentationScaling",
        "evolvedLearningRateDecayPointRepresentationEncoding",
        "evolvedLossFunctionTransitions",
        "evolvedActivationFunction",
    ):
        if glo.has(key):
            glo.take(key)
            glo.refuse(key, "evolving schedules and activations besides the loss is not in taylorglo")
    glo.finish()
    experiment.finish()
