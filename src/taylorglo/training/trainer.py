"""Train one fresh network with one loss (the reference's "Fumanchu").

:func:`train` is the single training function behind every caller: a search's fitness
evaluation (a partial schedule), ``final``'s full re-training, ``taylorglo train`` and EPBT. It reads
top to bottom like a plain PyTorch loop on purpose: the data sit in memory as tensors (on the
training device), each step indexes a batch, and the only extra work per step is two on-device
additions for the training log, so the loop runs as fast as a hand-written one (see
``benchmarks/trainer_overhead.py``).

It never raises for a bad *candidate*: a NaN or infinite loss, or an early abort, becomes a
:class:`TrainResult` with ``status`` ``"failed"`` or ``"aborted"`` and the reason, so a search
running for days records it and goes on. Problems with the *configuration* (unknown dataset, bad
field) still raise :class:`~taylorglo.errors.TaylorGLOError`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import TaylorGLOError, one_line
from ..loss import CROSS_ENTROPY, TaylorGLOLoss, parse_loss
from ..seeds import derived_seed
from .augment import augment_batch, cutmix, to_float
from .config import Schedule, TrainConfig
from .data import DataSplits, load_training_data
from .heads import aux_heads, forward_with_aux
from .models import build_model, input_layer
from .optimizers import build_optimizer

ProgressFn = Callable[[int, int], None]
LossLike = nn.Module | str | Sequence[float] | None

#: Seeds of successive attempts after an early abort: a retry with the same seed would repeat
#: the same run exactly, so attempt k uses ``seed + k * RETRY_SEED_STRIDE``.
RETRY_SEED_STRIDE = 1_000_003


#: TrainResult fields that are not metrics: the network, what it is attacked on, its state.
_NOT_METRICS = ("model", "model_data", "state")


@dataclass
class TrainResult:
    """What one training run produced. Accuracies are in [0, 1]; ``None`` where not measured."""

    status: str  # "ok" | "aborted" | "failed"
    reason: str | None
    val_accuracy: float
    val_loss: float
    test_accuracy: float | None
    test_loss: float | None
    #: Running accuracy and mean loss over the training batches of the last log window.
    train_accuracy: float | None
    train_loss: float | None
    steps: int
    total_steps: int
    attempts: int
    seed: int
    wall_time: float
    #: Seconds spent inside training steps (forward, backward, optimiser; all attempts), the
    #: share of ``wall_time`` that is useful work: what the host's overhead benchmark measures.
    step_time: float = 0.0
    #: Seconds spent measuring the network (validation, test and early-abort passes; all attempts):
    #: with ``step_time``, what tells a slow evaluation from slow training.
    eval_time: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    #: The fitness the run's trainer measured (a user objective's); None: the validation accuracy.
    fitness: float | None = None
    #: Validation accuracy of each class (EPBT's behaviour descriptor for novelty selection).
    val_class_accuracy: list[float] | None = None
    #: The trained network (Normalize layer first), for callers that save or attack it.
    model: nn.Module | None = field(default=None, repr=False, compare=False)
    #: What a saved ``model`` is attacked on when the trainer has no dataset of its own (a user
    #: objective's ``trial.save_model(module, inputs, targets, input_range)``).
    model_data: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    #: ``{"step", "model", "optimizer"}`` state dicts to continue this run from (``keep_state``).
    state: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self, history: bool = True) -> dict[str, Any]:
        """JSON-ready metrics (the network itself is left out)."""
        # Not asdict(): it deep-copies every field first, the network and its tensors included.
        data = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.name not in _NOT_METRICS}
        if not history:
            data.pop("history")
        return data


def as_loss(loss: LossLike, round_to: int | None = None, inputs: Sequence[str] | None = None) -> nn.Module:
    """Accept a module, a text spec (``"cross-entropy"``, ``"taylorglo:…"``), params, or None (CE);
    ``inputs`` are what a TaylorGLO parameter vector is a polynomial of (``training.loss_inputs``)."""
    if loss is None:
        return parse_loss(CROSS_ENTROPY)
    if isinstance(loss, nn.Module):
        return loss
    if isinstance(loss, str):
        return parse_loss(loss, round_to=round_to, inputs=inputs)
    return TaylorGLOLoss(list(loss), round_to=round_to, inputs=inputs)


@dataclass
class Segment:
    """Train only steps ``[start, stop)`` of the full schedule, continuing ``state`` (EPBT).

    ``state`` is what :attr:`TrainResult.state` holds (weights *and* optimiser state, so momentum
    carries over as in PBT); None starts from a fresh initialisation. The batch order, dropout and
    augmentation of the segment come from the run's seed alone, so a segment re-run from the same
    state with the same seed gives the same network: that is what lets EPBT resume exactly.

    Distillation (SPEC §7): for the first ``distill_steps`` steps, the objective is
    ``(1 - w)·loss + w·T²·KL(teacher_T ‖ student_T)`` where the teacher is a frozen copy of the
    starting network, so a child that inherited its parent's weights keeps what they knew while its
    new loss and hyperparameters take hold.
    """

    start: int
    stop: int
    state: dict[str, Any] | None = None
    distill_weight: float = 0.0
    distill_temperature: float = 1.0
    distill_steps: int = 0


def distillation_loss(
    logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float | torch.Tensor
) -> torch.Tensor:
    """Hinton et al.'s ``T²·KL(softmax(t/T) ‖ softmax(s/T))``, averaged over the batch. A
    population's ``(P, B, C)`` logits (:mod:`.population`) give one value per member, with
    ``temperature`` a number or one per member."""
    if logits.dim() == 2:
        t = temperature
        return F.kl_div(
            F.log_softmax(logits / t, dim=1),
            F.log_softmax(teacher_logits / t, dim=1),
            reduction="batchmean",
            log_target=True,
        ) * (t * t)
    t = torch.as_tensor(temperature, dtype=logits.dtype, device=logits.device).reshape(-1, 1, 1)
    kl = F.kl_div(
        F.log_softmax(logits / t, dim=-1), F.log_softmax(teacher_logits / t, dim=-1), reduction="none", log_target=True
    )
    return kl.sum(-1).mean(-1) * (t * t).reshape(-1)


class Network(nn.Sequential):
    """The data's input layer, then the model; the model's auxiliary heads (:mod:`.heads`), where
    it has them, are reached through it."""

    @property
    def aux_heads(self) -> int:
        return aux_heads(self[-1])

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return forward_with_aux(self[-1], self[0](x))


def build_network(config: TrainConfig, data: DataSplits, field: str = "model") -> nn.Module:
    """The network :func:`train` trains: ``config``'s model behind the data's input layer
    (:func:`~.models.input_layer`), so it takes inputs as stored (the form ``save_network`` writes)."""
    net = build_model(
        config.model,
        data.input_shape,
        data.num_classes,
        field=field,
        vocab_size=data.vocab_size,
        **config.model_options,
    )
    return Network(input_layer(data.inputs, data.mean, data.std), net)


def check_logits(logits: torch.Tensor, batch: int, num_classes: int, model: str, field: str = "model") -> None:
    """A model must map a batch to ``(batch, num_classes)`` logits; anything else is the
    configuration's fault, said in one line (not a shape error deep inside the loss)."""
    if tuple(logits.shape) != (batch, num_classes):
        raise TaylorGLOError(
            f"{field}: {model!r} returns outputs of shape {tuple(logits.shape)} for a batch of "
            f"{batch}, but the dataset has {num_classes} classes: it must return (batch, "
            f"{num_classes}) logits"
        )


def check_network(config: TrainConfig, data: DataSplits, field: str = "training.model") -> nn.Module:
    """Build ``config``'s network and run two validation examples through it, so that a model
    that does not fit the data fails before any training, in one line. Leaves the caller's RNG
    as it was; returns the network (in eval mode), for a caller that inspects it too."""
    if data.inputs != "images":
        for name, value in (
            ("augment", config.augment == "crop-flip"),
            ("cutout", bool(config.cutout)),
            ("cutmix", bool(config.cutmix)),
        ):
            if value:
                raise TaylorGLOError(
                    f"training.{name}: {data.name} holds {data.inputs}, which are not cropped, flipped, cut out "
                    f"or mixed; remove training.{name}"
                )
    with torch.random.fork_rng(devices=[]):
        net = build_network(config, data, field).eval()
    try:
        with torch.no_grad():
            logits = net(to_float(data.val_x[:2]))
    except Exception as exc:  # the user's model cannot take these inputs
        raise TaylorGLOError(
            f"{field}: {config.model!r} fails on the dataset's inputs of shape "
            f"{tuple(data.val_x.shape[1:])}: {type(exc).__name__}: {one_line(exc)}"
        ) from None
    check_logits(logits, len(data.val_x[:2]), data.num_classes, config.model, field)
    config.heads(aux_heads(net))
    if aux_heads(net):
        with torch.no_grad():
            _, outputs = forward_with_aux(net, to_float(data.val_x[:2]))
        check_heads(outputs, aux_heads(net), len(data.val_x[:2]), data.num_classes, config.model, field)
    return net


def check_heads(
    outputs: Sequence[torch.Tensor], count: int, batch: int, num_classes: int, model: str, field: str
) -> None:
    """A network's heads must give what it says it has, each at least one output per class (the
    reference's heads give several cells per class: :class:`~.heads.ReferenceAuxHead`)."""
    if len(outputs) != count:
        raise TaylorGLOError(f"{field}: {model!r} says it has {count} auxiliary heads but returns {len(outputs)}")
    for i, out in enumerate(outputs):
        if out.dim() != 2 or out.shape[0] != batch or out.shape[1] < num_classes:
            raise TaylorGLOError(
                f"{field}: {model!r}'s auxiliary head {i} returns outputs of shape {tuple(out.shape)} for a "
                f"batch of {batch}: it must return (batch, at least {num_classes})"
            )


def resolve_device(name: str, field: str = "training.device") -> torch.device:
    """The device ``name`` names, refusing in one line one this machine does not have (every
    candidate would fail on it, and the search would "finish" having trained nothing)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TaylorGLOError(
                f"{field}: {name!r} asked for, but this PyTorch sees no CUDA device "
                f'(built with CUDA: {torch.backends.cuda.is_built()}); use "cpu" or "auto"'
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise TaylorGLOError(f"{field}: {name!r}: this machine has {torch.cuda.device_count()} CUDA devices")
    return device


def rng_devices(device: torch.device) -> list[int]:
    """The CUDA devices whose random state a training on ``device`` draws from (for
    ``torch.random.fork_rng``, which leaves the caller's state as it was): none on a CPU."""
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


class BatchOrder:
    """One run's training batches: a fresh permutation of the training split per epoch, and the
    augmentation of each batch, all drawn from one generator seeded by the run's seed (what makes a
    run's batches a function of its seed). :func:`train` draws from one; a vectorized population
    (:mod:`.population`) from one per member."""

    def __init__(self, seed: int, n: int, batch: int, device: torch.device, crop_fill: str = "mean") -> None:
        self.n, self.batch, self.device = n, batch, device
        # The crop's padding colour (TrainConfig.crop_fill): black, or None for the dataset's mean.
        self.crop_fill = (0.0,) if crop_fill == "black" else None
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.reseed(None)

    def reseed(self, seed: int | None) -> None:
        """Start a fresh permutation (from ``seed``, when given)."""
        if seed is not None:
            self.generator.manual_seed(seed)
        self.perm = torch.randperm(self.n, generator=self.generator, device=self.device)
        self.pos = 0

    def next(self, data: DataSplits, augment: bool, cutout: int, mix: tuple[float, float] = (0.0, 1.0)) -> Batch:
        """The next batch, as float inputs (augmented where asked, CutMix-ed with ``mix`` =
        (probability, alpha) where it draws so) and labels."""
        if self.pos + self.batch > self.n:
            self.reseed(None)
        idx = self.perm[self.pos : self.pos + self.batch]
        self.pos += self.batch
        xb, yb = to_float(data.train_x[idx]), data.train_y[idx]
        if augment or cutout:
            xb = augment_batch(
                xb, self.generator, flip=augment, crop_padding=4 if augment else 0, cutout=cutout, fill=data.mean,
                crop_fill=self.crop_fill,
            )  # fmt: skip
        mixed = None
        if mix[0] > 0:
            xb, mixed = cutmix(xb, yb, self.generator, *mix)
        return Batch(xb, yb, mixed)


@dataclass
class Batch:
    """One training batch: inputs, labels, and where CutMix mixed it, the partners' labels and
    the share of each image still its own (:func:`~.augment.cutmix`)."""

    x: torch.Tensor
    y: torch.Tensor
    mixed: tuple[torch.Tensor, float] | None = None

    def loss(self, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], logits: torch.Tensor) -> torch.Tensor:
        """The loss of ``logits`` on this batch: CutMix's ``λ·loss(y) + (1 - λ)·loss(y_partner)``
        where it mixed."""
        if self.mixed is None:
            return loss_fn(logits, self.y)
        partner, own = self.mixed
        return own * loss_fn(logits, self.y) + (1 - own) * loss_fn(logits, partner)


def log_record(done: int, schedule: Schedule, lr: float, train_loss: float, train_acc: float) -> dict[str, Any]:
    """One entry of a run's training log (``TrainResult.history``)."""
    return {
        "step": done,
        "epoch": round(done / schedule.steps_per_epoch, 3),
        "lr": lr,
        "train_loss": train_loss,
        "train_accuracy": train_acc,
    }


def diverged(train_loss: float, done: int) -> str | None:
    """Why a run whose last log window's mean loss is ``train_loss`` must stop (the NaN rule)."""
    return None if math.isfinite(train_loss) else f"non-finite training loss at step {done}"


def abort_reason(config: TrainConfig, val_accuracy: float, done: int) -> str | None:
    """Why a run at its early-abort step with ``val_accuracy`` is aborted (SPEC §2), or None."""
    if val_accuracy < config.abort_below:
        return f"validation accuracy {val_accuracy:.4f} < {config.abort_below} at step {done}"
    return None


def run_result(
    status: str,
    reason: str | None,
    val: tuple[float, float],
    test: tuple[float, float] | None,
    history: list[dict[str, Any]],
    **fields: Any,
) -> TrainResult:
    """A finished attempt's :class:`TrainResult` from what was measured at its end: ``test`` counts
    for a finished run only, a finished run whose validation loss is not finite is failed (keeping
    its test numbers), and the log's last entry gets the validation numbers. ``fields`` are the
    rest of the result's fields."""
    val_acc, val_loss = val
    test_acc, test_loss = test if status == "ok" and test is not None else (None, None)  # a finished run's
    if status == "ok" and not math.isfinite(val_loss):
        status, reason = "failed", "non-finite validation loss"
    if history:
        history[-1].update({"val_accuracy": val_acc, "val_loss": val_loss})
    return TrainResult(
        status=status,
        reason=reason,
        val_accuracy=val_acc,
        val_loss=val_loss,
        test_accuracy=test_acc,
        test_loss=test_loss,
        attempts=1,
        wall_time=0.0,
        history=history,
        **fields,
    )


def train(
    config: TrainConfig,
    loss: LossLike = None,
    seed: int = 0,
    data: DataSplits | None = None,
    progress: ProgressFn | None = None,
    keep_model: bool = False,
    reseed: tuple[int, int] | None = None,
    segment: Segment | None = None,
    keep_state: bool = False,
) -> TrainResult:
    """Train a fresh network with ``loss`` for ``config``'s (possibly partial) schedule.

    ``reseed = (step, seed2)`` switches the run's randomness (batch order, dropout, augmentation)
    to ``seed2`` at ``step``: the first ``step`` steps are exactly the run ``seed`` would make, the
    rest a fresh continuation. ``final --from-pretrained`` uses it to continue a candidate's own
    partial run (replayed from its seed) to the full schedule, differently in each repeat.

    ``data`` lets a long-lived worker pass a dataset it has already loaded; by default the
    dataset is loaded (and cached in-process) from the config. Early-aborted attempts are retried
    with fresh seeds up to ``config.attempts`` times; a non-finite loss is not retried (the same
    loss diverges again) and ends the run as ``"failed"``.

    ``segment`` trains one stretch of the schedule from a saved state (see :class:`Segment`; no
    early abort, one attempt); ``keep_state`` returns the state to continue from in ``result.state``.
    """
    config.validate()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    loss_fn = as_loss(loss, config.round_params, config.loss_inputs)
    if data is None:
        data = load_training_data(config, field="dataset")
    device = resolve_device(config.device)
    data = data.to(device)
    schedule = config.schedule(len(data.train_y))

    started = time.perf_counter()
    result: TrainResult | None = None
    step_time = eval_time = 0.0
    for attempt in range(1 if segment is not None else config.attempts):
        attempt_seed = seed + attempt * RETRY_SEED_STRIDE
        result = _attempt(
            config, schedule, loss_fn, data, device, attempt_seed, progress, keep_model, reseed, segment, keep_state
        )
        result.attempts = attempt + 1
        step_time += result.step_time
        eval_time += result.eval_time
        if result.status != "aborted":
            break
    assert result is not None
    result.wall_time = time.perf_counter() - started
    result.step_time, result.eval_time = step_time, eval_time
    return result


def _attempt(
    config: TrainConfig,
    schedule: Schedule,
    loss_fn: nn.Module,
    data: DataSplits,
    device: torch.device,
    seed: int,
    progress: ProgressFn | None,
    keep_model: bool,
    reseed: tuple[int, int] | None = None,
    segment: Segment | None = None,
    keep_state: bool = False,
) -> TrainResult:
    """One training attempt (from a fresh initialisation, or a segment's state); the body of :func:`train`."""
    # Seeding the global RNG (weight init, dropout) inside fork_rng leaves the caller's RNG as it was.
    with torch.random.fork_rng(devices=rng_devices(device)):
        torch.manual_seed(seed)
        model = build_network(config, data).to(device)
        heads = [
            (loss_fn if spec is None else as_loss(spec, config.round_params, config.loss_inputs), weight)
            for spec, weight in config.heads(aux_heads(model))
        ]
        batches = BatchOrder(seed, len(data.train_y), schedule.batch_size, device, config.crop_fill)
        first, stop = (segment.start, segment.stop) if segment is not None else (0, schedule.run_steps)
        optimizer = build_optimizer(model.parameters(), schedule.lr_at(config.lr, config.lr_gamma, first), config)
        teacher: nn.Module | None = None
        distill_until = first
        if segment is not None and segment.state is not None:
            model.load_state_dict(segment.state["model"])
            # A deep copy: the optimizer updates its buffers (momentum) in place, and load_state_dict keeps the
            # caller's tensors, so without it training would change the state the caller holds.
            optimizer.load_state_dict(copy.deepcopy(segment.state["optimizer"]))
            for group in optimizer.param_groups:  # this segment's hyperparameters, not the saved ones
                group["lr"] = schedule.lr_at(config.lr, config.lr_gamma, first)
                group["weight_decay"] = config.weight_decay
            if segment.distill_weight > 0 and segment.distill_steps > 0:
                teacher = copy.deepcopy(model).eval().requires_grad_(False)
                distill_until = first + segment.distill_steps
        augment = (config.augment or data.augment) == "crop-flip"
        cutout, mix = config.cutout, (config.cutmix, config.cutmix_alpha)
        batch = schedule.batch_size
        lr_changes = {m: schedule.lr_at(config.lr, config.lr_gamma, m) for m in schedule.milestones}

        history: list[dict[str, Any]] = []

        def finish(status: str, reason: str | None, steps: int, val: tuple[float, float] | None = None) -> TrainResult:
            """Measure the network on validation (unless ``val`` already holds that) and, for a
            finished run, test data."""
            finish_started = time.perf_counter()
            loop_time = finish_started - loop_started - eval_time
            class_acc = None
            if val is None:
                val_acc, val_loss, class_acc = evaluate_classes(
                    model, data.val_x, data.val_y, loss_fn, data.num_classes, config.eval_batch_size
                )
                val = (val_acc, val_loss)
            test = None
            if status == "ok" and config.eval_test:
                test = evaluate(model, data.test_x, data.test_y, loss_fn, config.eval_batch_size)
            return run_result(
                status,
                reason,
                val,
                test,
                history,
                train_accuracy=train_acc,
                train_loss=train_loss,
                steps=steps,
                total_steps=schedule.total_steps,
                seed=seed,
                step_time=loop_time,
                eval_time=eval_time + time.perf_counter() - finish_started,
                val_class_accuracy=class_acc,
                model=model if keep_model else None,
                state=_state(steps, model, optimizer) if keep_state else None,
            )

        # The losses of the training progress (the run's, its heads'), each once.
        timed = {id(f): f for f in (loss_fn, *(f for f, _ in heads)) if getattr(f, "uses_progress", False)}
        window_loss = torch.zeros((), device=device)
        window_correct = torch.zeros((), device=device, dtype=torch.long)
        window_steps = 0
        train_loss = train_acc = None
        model.train()
        loop_started, eval_time = time.perf_counter(), 0.0
        reseed_step, reseed_seed = reseed if reseed is not None else (-1, 0)
        for step in range(first, stop):
            if step == reseed_step:
                torch.manual_seed(reseed_seed)
                batches.reseed(reseed_seed)
            if step in lr_changes:
                for group in optimizer.param_groups:
                    group["lr"] = lr_changes[step]
            drawn = batches.next(data, augment, cutout, mix)
            xb, yb = drawn.x, drawn.y
            for fn in timed.values():  # a loss of the training progress sees where in the full schedule it is
                fn.set_progress(step / schedule.total_steps)  # type: ignore[operator]
            logits, aux = forward_with_aux(model, xb) if heads else (model(xb), [])
            if step == first:
                check_logits(logits, len(yb), data.num_classes, config.model)
            batch_loss = drawn.loss(loss_fn, logits)
            for (head_fn, weight), head_logits in zip(heads, aux):  # deep supervision (:mod:`.heads`)
                batch_loss = batch_loss + weight * drawn.loss(head_fn, head_logits)
            objective = batch_loss
            if teacher is not None and step < distill_until:
                assert segment is not None
                with torch.no_grad():
                    teacher_logits = teacher(xb)
                w = segment.distill_weight
                objective = (1 - w) * batch_loss + w * distillation_loss(
                    logits, teacher_logits, segment.distill_temperature
                )
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            optimizer.step()

            window_loss += batch_loss.detach()
            window_correct += (logits.detach().argmax(1) == yb).sum()
            window_steps += 1
            done = step + 1
            at_abort = segment is None and done == schedule.abort_step
            if done % config.log_every == 0 or done == stop or at_abort:
                train_loss = window_loss.item() / window_steps
                train_acc = window_correct.item() / (window_steps * batch)
                record = log_record(done, schedule, optimizer.param_groups[0]["lr"], train_loss, train_acc)
                history.append(record)
                window_loss.zero_()
                window_correct.zero_()
                window_steps = 0
                if progress is not None:
                    progress(done - first, stop - first)
                why = diverged(train_loss, done)
                if why is not None:
                    return finish("failed", why, done)
                if at_abort:
                    eval_started = time.perf_counter()
                    val = evaluate(model, data.val_x, data.val_y, loss_fn, config.eval_batch_size)
                    eval_time += time.perf_counter() - eval_started
                    record["val_accuracy"] = val[0]
                    why = abort_reason(config, val[0], done)
                    if why is not None:
                        return finish("aborted", why, done, val)
        return finish("ok", None, stop)


def _state(step: int, model: nn.Module, optimizer: Any) -> dict[str, Any]:
    """A copy (on the CPU) of what a later :class:`Segment` needs to continue this run."""
    optimizer_state = optimizer.state_dict()
    moved = {
        k: {n: v.detach().cpu().clone() if isinstance(v, torch.Tensor) else v for n, v in st.items()}
        for k, st in optimizer_state["state"].items()
    }
    return {
        "step": step,
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "optimizer": {"state": moved, "param_groups": copy.deepcopy(optimizer_state["param_groups"])},
    }


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module, batch_size: int = 100
) -> tuple[float, float]:
    """Accuracy and mean loss of ``model`` on ``(x, y)``, in eval mode (dropout off, BN frozen)."""
    accuracy, loss, _ = evaluate_classes(model, x, y, loss_fn, None, batch_size)
    return accuracy, loss


@torch.inference_mode()
def evaluate_classes(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: nn.Module,
    num_classes: int | None,
    batch_size: int = 100,
) -> tuple[float, float, list[float] | None]:
    """:func:`evaluate`, plus each class's accuracy when ``num_classes`` is given (0 for a class
    with no examples): one pass for both, since EPBT measures it for every member at every step."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=y.device)
    total_loss = torch.zeros((), device=y.device)
    per_class = torch.zeros(num_classes or 1, dtype=torch.long, device=y.device)
    for start in range(0, len(y), batch_size):
        xb, yb = to_float(x[start : start + batch_size]), y[start : start + batch_size]
        logits = model(xb)
        hits = logits.argmax(1) == yb
        correct += hits.sum()
        if num_classes:
            per_class += torch.bincount(yb[hits], minlength=num_classes)[:num_classes]
        total_loss += loss_fn(logits, yb) * len(yb)
    model.train(was_training)
    n = max(1, len(y))
    classes = None
    if num_classes:
        sizes = torch.bincount(y, minlength=num_classes)[:num_classes].clamp(min=1)
        classes = (per_class.double() / sizes.double()).tolist()
    return correct.item() / n, total_loss.item() / n, classes


@dataclass(frozen=True)
class ScheduleStep:
    """One stretch of a loss/hyperparameter schedule: steps ``[start, stop)`` trained with
    ``loss`` (TaylorGLO params; None: cross-entropy), learning rate and weight decay, optionally
    distilling from the network as it was at ``start`` (see :class:`Segment`)."""

    start: int
    stop: int
    params: tuple[float, ...] | None
    lr: float
    weight_decay: float
    distill_weight: float = 0.0
    distill_temperature: float = 1.0
    distill_steps: int = 0

    def config_for(self, config: TrainConfig, eval_test: bool) -> TrainConfig:
        """``config`` with this stretch's hyperparameters; the test set measured at its end only
        when ``eval_test`` (and the config measures it at all)."""
        return config.replace(lr=self.lr, weight_decay=self.weight_decay, eval_test=config.eval_test and eval_test)

    def segment(self, state: dict[str, Any] | None) -> Segment:
        """The :class:`Segment` that trains this stretch on from ``state``."""
        return Segment(self.start, self.stop, state, self.distill_weight, self.distill_temperature, self.distill_steps)


#: Trains one stretch of every member still running a schedule (:func:`train_schedules`):
#: ``(configs, losses, seeds, data, segments, keep_model, keep_state)`` to one result per member.
StretchTrainer = Callable[
    [list[TrainConfig], list[LossLike], list[int], DataSplits, list[Segment], bool, bool], list[TrainResult]
]


def train_schedule(
    config: TrainConfig,
    steps: Sequence[ScheduleStep],
    seed: int = 0,
    data: DataSplits | None = None,
    keep_model: bool = False,
) -> TrainResult:
    """Train one fresh network through a schedule of losses and hyperparameters (an EPBT lineage
    replayed from scratch): :func:`train` once per stretch, each continuing the last one's state.

    Stretch ``k`` draws its batches from ``SeedSequence([seed, k])``. The result is the last
    stretch's, with the histories joined, the times summed and the test set measured at the end; a
    stretch that fails ends the run there, as ``failed``.
    """
    return train_schedules(config, [steps], [seed], data, keep_model, _stretch_alone)[0]


def _stretch_alone(
    configs: list[TrainConfig],
    losses: list[LossLike],
    seeds: list[int],
    data: DataSplits,
    segments: list[Segment],
    keep_model: bool,
    keep_state: bool,
) -> list[TrainResult]:
    """One stretch of a lone replayed schedule: :func:`train` on its segment."""
    return [
        train(configs[0], losses[0], seeds[0], data, keep_model=keep_model, segment=segments[0], keep_state=keep_state)
    ]


def train_schedules(
    config: TrainConfig,
    schedules: Sequence[Sequence[ScheduleStep]],
    seeds: Sequence[int],
    data: DataSplits | None,
    keep_model: bool,
    train_stretch: StretchTrainer,
) -> list[TrainResult]:
    """:func:`train_schedule` for several schedules over the same stretches, each stretch of all
    of them trained by one call of ``train_stretch`` (:func:`train` for one; a vectorized
    population for several): the one loop of a replayed schedule, whoever trains it."""
    if not schedules or any(not steps for steps in schedules):
        raise ValueError("steps: a schedule needs at least one stretch")
    if data is None:
        data = load_training_data(config, field="dataset")
    count = len(schedules[0])
    states: list[dict[str, Any] | None] = [None] * len(schedules)
    history: list[list[dict[str, Any]]] = [[] for _ in schedules]
    times = [[0.0, 0.0, 0.0] for _ in schedules]  # wall, step, eval
    results: list[TrainResult | None] = [None] * len(schedules)
    running = list(range(len(schedules)))
    for k in range(count):
        last = k == count - 1
        stretches = [schedules[m][k] for m in running]
        trained = train_stretch(
            [s.config_for(config, last) for s in stretches],
            [None if s.params is None else list(s.params) for s in stretches],
            [derived_seed(seeds[m], k) for m in running],
            data,
            [s.segment(states[m]) for s, m in zip(stretches, running)],
            keep_model and last,
            not last,
        )
        for m, result in zip(running, trained):
            history[m] += result.history
            times[m] = [t + r for t, r in zip(times[m], (result.wall_time, result.step_time, result.eval_time))]
            states[m], results[m] = result.state, result
        running = [m for m, result in zip(running, trained) if result.ok]  # a stretch that fails ends its run
        if not running:
            break
    out = []
    for m, result in enumerate(results):
        assert result is not None
        result.history, result.seed, result.state = history[m], seeds[m], None
        result.wall_time, result.step_time, result.eval_time = times[m]
        out.append(result)
    return out
