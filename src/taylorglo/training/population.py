"""Training a population at once: λ networks of one architecture as one stacked model.

Every candidate of a generation trains the same network on the same data for the same steps;
only the loss (and, in ``final``, the seed) differs. :func:`train_population` stacks the members'
parameters (``torch.func.stack_module_state``) and runs one ``vmap`` ped forward and one backward
pass for all of them per step, where :func:`~.trainer.train` would run λ small trainings that leave
the cores (or a GPU) mostly idle. EPBT's stretches stack the same way: each member continues its
own saved network and momentum with its own learning rate and weight decay (SGD steps them per
member), distilling from its own starting network where asked; a schedule replayed for several
seeds is one population per stretch (:func:`train_schedule_population`).

Each member is the training :func:`~.trainer.train` runs with its loss and seed, up to
floating-point order: the same initialisation (built from its seed, as ``train`` builds it), the
same batch order and augmentation (its own generator), the same schedule, early abort, NaN rule,
retries and measurements, taken from the trainer's own pieces. Dropout's noise is drawn outside
``vmap``, from each member's own stream (on the CPU the masks ``train`` draws for that seed). What
differs is only the floating-point order of the batched kernels, and a member's result never
depends on the other members of its stack. A member that aborts or diverges leaves the stack at
once and stops costing compute; its retry (a fresh seed, as in ``train``) goes into the next stack
with the other retries.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from ..loss import population_loss
from .augment import to_float
from .config import Schedule, TrainConfig
from .data import DataSplits, load_training_data
from .heads import aux_heads
from .sgd import SGD
from .trainer import (
    RETRY_SEED_STRIDE,
    Batch,
    BatchOrder,
    LossLike,
    ScheduleStep,
    Segment,
    TrainResult,
    abort_reason,
    as_loss,
    build_network,
    check_logits,
    distillation_loss,
    diverged,
    log_record,
    resolve_device,
    rng_devices,
    run_result,
    train_schedules,
)


def train_population(
    config: TrainConfig,
    losses: Sequence[LossLike],
    seeds: Sequence[int],
    data: DataSplits | None = None,
    keep_model: bool = False,
    segments: Sequence[Segment] | None = None,
    hyper: Sequence[tuple[float, float]] | None = None,
    keep_state: bool = False,
) -> list[TrainResult]:
    """Train one network per ``(loss, seed)`` for ``config``'s (possibly partial) schedule, all at
    once; the results in the members' order, each what :func:`~.trainer.train` returns for that
    loss and seed (see the module docstring for what may differ).

    ``segments`` (one per member, all over the same steps) trains each member's stretch from its
    own saved state, as ``train(segment=...)`` does (EPBT); ``hyper`` gives each member its own
    ``(lr, weight_decay)`` in place of the config's; ``keep_state`` returns each member's state
    to continue from, as ``train(keep_state=True)`` does."""
    if len(losses) != len(seeds) or not losses:
        raise ValueError(f"a population needs one seed per loss (got {len(losses)} losses, {len(seeds)} seeds)")
    for name, given in (("segments", segments), ("hyper", hyper)):
        if given is not None and len(given) != len(seeds):
            raise ValueError(f"{name}: one per member (got {len(given)} for {len(seeds)} members)")
    if segments is not None and len({(s.start, s.stop) for s in segments}) > 1:
        raise ValueError("segments: the members of a population train the same steps")
    config.validate()
    if config.optimizer != "sgd":
        raise ValueError(f"a vectorized population steps with SGD; optimizer {config.optimizer!r} trains one at a time")
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    loss_fns = [as_loss(loss, config.round_params, config.loss_inputs) for loss in losses]
    if data is None:
        data = load_training_data(config, field="dataset")
    device = resolve_device(config.device)
    data = data.to(device)
    schedule = config.schedule(len(data.train_y))
    hyper = list(hyper) if hyper is not None else None

    results: list[TrainResult | None] = [None] * len(loss_fns)
    times = [[0.0, 0.0, 0.0] for _ in loss_fns]  # wall, step, eval: summed over attempts
    pending = list(range(len(loss_fns)))
    for attempt in range(1 if segments is not None else config.attempts):  # a segment has one attempt
        if not pending:
            break
        stack = _Stack(
            config,
            schedule,
            data,
            device,
            [loss_fns[i] for i in pending],
            [seeds[i] + attempt * RETRY_SEED_STRIDE for i in pending],
            keep_model,
            None if segments is None else [segments[i] for i in pending],
            None if hyper is None else [hyper[i] for i in pending],
            keep_state,
        )
        retry = []
        for i, result in zip(pending, stack.run()):
            result.attempts = attempt + 1
            times[i] = [t + r for t, r in zip(times[i], (result.wall_time, result.step_time, result.eval_time))]
            result.wall_time, result.step_time, result.eval_time = times[i]
            results[i] = result
            if result.status == "aborted":
                retry.append(i)
        pending = retry
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def train_schedule_population(
    config: TrainConfig,
    schedules: Sequence[Sequence[ScheduleStep]],
    seeds: Sequence[int],
    data: DataSplits | None = None,
    keep_model: bool = False,
) -> list[TrainResult]:
    """:func:`~.trainer.train_schedule` for several schedules over the same stretches (EPBT
    lineages replayed from scratch, a ``final`` 's repeats) at once: each stretch of all of them
    one vectorized population, members continuing their own states with their own
    hyperparameters; a member that fails a stretch leaves for good, as in ``train_schedule``."""
    if len({tuple((s.start, s.stop) for s in steps) for steps in schedules}) > 1:
        raise ValueError("schedules: the members of a population train the same stretches")
    return train_schedules(config, schedules, seeds, data, keep_model, _stretch_together)


def _stretch_together(
    configs: list[TrainConfig],
    losses: list[LossLike],
    seeds: list[int],
    data: DataSplits,
    segments: list[Segment],
    keep_model: bool,
    keep_state: bool,
) -> list[TrainResult]:
    """One stretch of every member of a replayed schedule, as one population (each member its own
    lr and weight decay: the configs differ in those only)."""
    hyper = [(c.lr, c.weight_decay) for c in configs]
    return train_population(configs[0], losses, seeds, data, keep_model, segments, hyper, keep_state)


class _Stack:
    """One attempt of several members, trained in lockstep until each finishes or leaves."""

    def __init__(
        self,
        config: TrainConfig,
        schedule: Schedule,
        data: DataSplits,
        device: torch.device,
        losses: list[nn.Module],
        seeds: list[int],
        keep_model: bool,
        segments: list[Segment] | None = None,
        hyper: list[tuple[float, float]] | None = None,
        keep_state: bool = False,
    ) -> None:
        self.config, self.schedule, self.data, self.device = config, schedule, data, device
        self.losses, self.seeds, self.keep_model = losses, seeds, keep_model
        self.segments, self.hyper, self.keep_state = segments, hyper, keep_state
        # Positions (in the caller's order) still training. A lone member trains beside a copy of
        # itself: vmap over one member takes other kernels than over several (BatchNorm networks
        # then differ in the last bits), and a member's result must not depend on how many share
        # its stack, or a resumed generation (a smaller stack) would not repeat the killed one.
        self.members = list(range(len(seeds))) if len(seeds) > 1 else [0, 0]
        self.results: dict[int, TrainResult] = {}
        self.history: dict[int, list[dict[str, Any]]] = {m: [] for m in self.members}
        self.train_stats: dict[int, tuple[float | None, float | None]] = {m: (None, None) for m in self.members}

    def run(self) -> list[TrainResult]:
        started = time.perf_counter()
        with torch.random.fork_rng(devices=rng_devices(self.device)):
            self._train()
        wall = (time.perf_counter() - started) / len(self.seeds)
        for result in self.results.values():  # each member's share of the stack's time
            result.wall_time = wall
        return [self.results[m] for m in range(len(self.seeds))]

    # -- the loop -------------------------------------------------------------------------------

    def _train(self) -> None:
        config, schedule, data, device = self.config, self.schedule, self.data, self.device
        first, stop = (self.segments[0].start, self.segments[0].stop) if self.segments else (0, schedule.run_steps)
        networks, streams, momenta = [], [], []
        seeds = [self.seeds[m] for m in self.members]
        for member, seed in zip(self.members, seeds):
            torch.manual_seed(seed)  # each member's initialisation is the one train() draws for its seed
            network = build_network(config, data).to(device)
            if aux_heads(network):
                raise ValueError(
                    f"{config.model!r} has auxiliary heads, which a vectorized population does not train: train "
                    "it one network at a time (vectorize = 1)"
                )
            streams.append(_stream_after_init(device))
            state = self.segments[member].state if self.segments else None
            if state is not None:  # a segment continues its saved network and momentum, as train() does
                network.load_state_dict(state["model"])
            momenta.append(_momenta(state, len(list(network.parameters()))))
            networks.append(network)
        self.base = copy.deepcopy(networks[0]).to("meta")
        self.dropout = _Dropouts(self.base, networks[0], to_float(data.train_x[: schedule.batch_size]), streams)
        self.params, self.buffers = stack_module_state(networks)  # type: ignore[arg-type]
        del networks
        self.base_lrs = self.weight_decays = None
        if self.hyper is not None:  # each member's own hyperparameters (EPBT)
            self.base_lrs = [self.hyper[m][0] for m in self.members]
            # float64: the values train() would log and save, exactly; SGD casts them to the parameters' dtype
            self.weight_decays = torch.tensor(
                [self.hyper[m][1] for m in self.members], dtype=torch.float64, device=device
            )
        self.optimizer = self._optimizer(self._lr_at(first))
        self._load_momenta(momenta)
        self.teacher = _Teacher.of(self, first)
        orders = _BatchOrders(seeds, len(data.train_y), schedule.batch_size, device, config.crop_fill)
        augment = (config.augment or data.augment) == "crop-flip"
        cutout, mix = config.cutout, (config.cutmix, config.cutmix_alpha)
        milestones = set(schedule.milestones)
        # No randomness inside vmap: dropout's noise is drawn outside, per member (_Dropouts).
        self.forwards = _forwards(self.base)
        self.losses = [self.losses[m] for m in self.members]
        loss_fn = population_loss(self.losses)
        batch = schedule.batch_size
        window_loss = torch.zeros(len(self.members), device=device)
        window_correct = torch.zeros(len(self.members), device=device, dtype=torch.long)
        window_steps = 0
        self.base.train()
        loop_started, self.eval_time = time.perf_counter(), 0.0
        timed = [loss for loss in self.losses if getattr(loss, "uses_progress", False)]
        for step in range(first, stop):
            if step in milestones:
                self.optimizer.param_groups[0]["lr"] = self._lr_at(step)
            for loss in timed:  # a loss of the training progress sees where in the full schedule it is
                loss.set_progress(step / schedule.total_steps)  # type: ignore[operator]
            drawn = orders.batches(data, augment, cutout, mix)
            buffers = {**self.buffers, **self.dropout.draw()}
            shared = len(drawn) == 1  # one batch for every member (a generation's shared seed): not copied
            inputs = drawn[0].x if shared else torch.stack([b.x for b in drawn])
            logits = self.forwards[shared](self.params, buffers, inputs)
            yb = _labels([b.y for b in drawn], len(self.members))
            if step == first:
                check_logits(logits[0], batch, data.num_classes, config.model)
            member_loss = _mixed_loss(loss_fn, logits, yb, drawn, len(self.members))
            objective = member_loss
            if self.teacher is not None:
                objective = self.teacher.objective(step, member_loss, logits, inputs, shared)
                if self.teacher.done(step + 1):
                    self.teacher = None
            self.optimizer.zero_grad(set_to_none=True)
            objective.sum().backward()  # members share no parameter: each gets its own gradient
            self.optimizer.step()

            window_loss += member_loss.detach()
            window_correct += (logits.detach().argmax(-1) == yb).sum(-1)
            window_steps += 1
            done = step + 1
            at_abort = self.segments is None and done == schedule.abort_step
            last = done == stop
            if done % config.log_every and not last and not at_abort:
                continue
            losses = (window_loss / window_steps).tolist()
            accs = (window_correct.double() / (window_steps * batch)).tolist()
            window_loss.zero_()
            window_correct.zero_()
            window_steps = 0
            leaving: dict[int, tuple[str, str | None, tuple[float, float] | None]] = {}
            lrs = self._lrs()
            for pos, member in enumerate(self.members):
                why = diverged(losses[pos], done)
                if why is not None:
                    leaving[pos] = ("failed", why, None)
                if member in self.members[:pos]:  # a lone member's copy (see __init__): its twin logs
                    continue
                self.train_stats[member] = (accs[pos], losses[pos])
                self.history[member].append(log_record(done, schedule, lrs[pos], losses[pos], accs[pos]))
            if at_abort:
                eval_started = time.perf_counter()
                val = self._evaluate(data.val_x, data.val_y, classes=False)
                self.eval_time += time.perf_counter() - eval_started
                for pos, member in enumerate(self.members):
                    if pos in leaving:
                        continue
                    self.history[member][-1]["val_accuracy"] = val[pos][0]
                    why = abort_reason(config, val[pos][0], done)
                    if why is not None:
                        leaving[pos] = ("aborted", why, (val[pos][0], val[pos][1]))
            if last:
                self._finish(
                    {**{p: ("ok", None, None) for p in range(len(self.members))}, **leaving}, done, loop_started
                )
                return
            if leaving:
                self._finish(leaving, done, loop_started)
                keep = [p for p in range(len(self.members)) if p not in leaving]
                if not keep:
                    return
                keep = keep * 2 if len(keep) == 1 else keep  # never a stack of one (see __init__)
                self._keep(keep)
                orders.keep(keep)
                self.dropout.keep(keep)
                loss_fn = population_loss(self.losses)
                window_loss, window_correct = window_loss[keep], window_correct[keep]

    def _lr_at(self, step: int) -> float | torch.Tensor:
        """The learning rate of ``step``: the config's, or (``hyper``) one per member."""
        c, schedule = self.config, self.schedule
        if self.base_lrs is None:
            return schedule.lr_at(c.lr, c.lr_gamma, step)
        lrs = [schedule.lr_at(lr, c.lr_gamma, step) for lr in self.base_lrs]
        return torch.tensor(lrs, dtype=torch.float64, device=self.device)

    def _lrs(self) -> list[float]:
        """Each member's learning rate now, for its log."""
        lr = self.optimizer.param_groups[0]["lr"]
        return lr.tolist() if torch.is_tensor(lr) else [lr] * len(self.members)

    def _optimizer(self, lr: float | torch.Tensor) -> SGD:
        c = self.config
        decay = c.weight_decay if self.weight_decays is None else self.weight_decays
        return SGD(self.params.values(), lr=lr, momentum=c.momentum, nesterov=c.nesterov, weight_decay=decay)  # type: ignore[arg-type]

    def _load_momenta(self, momenta: list[list[torch.Tensor | None]]) -> None:
        """Stack the members' saved momentum buffers into the optimizer (a member without one, a
        fresh network, starts from zeros: SGD's first step makes the same buffer from them)."""
        if not self.config.momentum or all(b is None for row in momenta for b in row):
            return
        for k, param in enumerate(self.params.values()):
            rows = [row[k] if row[k] is not None else torch.zeros_like(param[0]) for row in momenta]
            self.optimizer.state[param] = {
                "momentum_buffer": torch.stack([r.to(dtype=param.dtype, device=param.device) for r in rows])
            }

    def _keep(self, keep: list[int]) -> None:
        """Only the members at ``keep`` train on: the stack, its momentum and its lists shrink."""
        index = torch.tensor(keep, device=self.device)
        old, before = self.optimizer, self.params
        self.params = {n: p.detach()[index].requires_grad_(True) for n, p in before.items()}
        self.buffers = {n: b[index] for n, b in self.buffers.items()}
        lr = old.param_groups[0]["lr"]
        if self.base_lrs is not None:
            assert self.weight_decays is not None
            lr, self.weight_decays = lr[index], self.weight_decays[index]
            self.base_lrs = [self.base_lrs[p] for p in keep]
        self.optimizer = self._optimizer(lr)
        for was, now in zip(before.values(), self.params.values()):
            if was in old.state:
                self.optimizer.state[now] = {k: v[index] for k, v in old.state[was].items()}
        if self.teacher is not None:
            self.teacher.keep(index)
        self.members = [self.members[p] for p in keep]
        self.losses = [self.losses[p] for p in keep]

    # -- measuring ------------------------------------------------------------------------------

    @torch.inference_mode()
    def _evaluate(
        self, x: torch.Tensor, y: torch.Tensor, classes: bool
    ) -> list[tuple[float, float, list[float] | None]]:
        """Each member's accuracy, mean loss (and per-class accuracy) on ``(x, y)`` in eval mode:
        :func:`~.trainer.evaluate_classes` for the whole stack in one pass."""
        k, num_classes = len(self.members), self.data.num_classes
        self.base.eval()
        forward = self.forwards[True]  # every member on the same examples
        loss_fn = population_loss(self.losses)
        correct = torch.zeros(k, dtype=torch.long, device=y.device)
        total_loss = torch.zeros(k, device=y.device)
        per_class = torch.zeros(k, num_classes, dtype=torch.long, device=y.device)
        size = self.config.eval_batch_size
        for start in range(0, len(y), size):
            xb, yb = to_float(x[start : start + size]), y[start : start + size]
            logits = forward(self.params, self.buffers, xb)
            hits = logits.argmax(-1) == yb
            correct += hits.sum(1)
            if classes:
                per_class += (hits.unsqueeze(-1) & nn.functional.one_hot(yb, num_classes).bool()).sum(1)
            total_loss += loss_fn(logits, yb.expand(k, -1)) * len(yb)
        self.base.train()
        n = max(1, len(y))
        sizes = torch.bincount(y, minlength=num_classes)[:num_classes].clamp(min=1).double()
        rows = (per_class.double() / sizes).tolist() if classes else [None] * k
        return [(c / n, t / n, r) for c, t, r in zip(correct.tolist(), total_loss.tolist(), rows)]

    def _finish(
        self, leaving: dict[int, tuple[str, str | None, tuple[float, float] | None]], steps: int, loop_started: float
    ) -> None:
        """Measure the members at the positions in ``leaving`` (validation, unless already
        measured; test for a finished run) and record their results, as ``train``'s finish does."""
        finish_started = time.perf_counter()
        loop_time = (finish_started - loop_started - self.eval_time) / len(self.seeds)
        val = None  # aborted members were measured at the abort: only the others need a pass
        if any(measured is None for _, _, measured in leaving.values()):
            val = self._evaluate(self.data.val_x, self.data.val_y, classes=True)
        test = None
        if self.config.eval_test and any(status == "ok" for status, _, _ in leaving.values()):
            test = self._evaluate(self.data.test_x, self.data.test_y, classes=False)
        eval_time = (self.eval_time + time.perf_counter() - finish_started) / len(self.seeds)
        for pos, (status, reason, measured) in leaving.items():
            member = self.members[pos]
            if measured is not None:
                val_acc, val_loss, class_acc = *measured, None
            else:
                assert val is not None
                val_acc, val_loss, class_acc = val[pos]
            train_acc, train_loss = self.train_stats[member]
            self.results[member] = run_result(
                status,
                reason,
                (val_acc, val_loss),
                None if test is None else test[pos][:2],
                self.history[member],
                train_accuracy=train_acc,
                train_loss=train_loss,
                steps=steps,
                total_steps=self.schedule.total_steps,
                seed=self.seeds[member],
                step_time=loop_time,
                eval_time=eval_time,
                val_class_accuracy=class_acc,
                model=self._network(pos) if self.keep_model else None,
                state=self._state(pos, steps) if self.keep_state else None,
            )

    def _network(self, pos: int) -> nn.Module:
        """The member at ``pos`` as a network of its own (what ``train(keep_model=True)`` returns)."""
        network = build_network(self.config, self.data).to(self.device)
        state = {n: p.detach()[pos].clone() for n, p in self.params.items()}
        state.update({n: b[pos].clone() for n, b in self.buffers.items()})
        network.load_state_dict(state)
        return network

    def _state(self, pos: int, steps: int) -> dict[str, Any]:
        """The member at ``pos`` as ``train(keep_state=True)`` leaves its state: weights and
        buffers, and its optimizer's state in ``SGD.state_dict`` 's layout (on the CPU)."""

        def own(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.detach()[pos].cpu().clone()

        model = {
            name: own(self.params[name] if name in self.params else self.buffers[name])
            for name in self.base.state_dict()
        }
        group = self.optimizer.param_groups[0]
        lr = group["lr"][pos].item() if torch.is_tensor(group["lr"]) else group["lr"]
        decay = group["weight_decay"][pos].item() if torch.is_tensor(group["weight_decay"]) else group["weight_decay"]
        params = list(self.params.values())
        optimizer = {
            "state": {
                k: {n: own(v) for n, v in self.optimizer.state[p].items()}
                for k, p in enumerate(params)
                if p in self.optimizer.state
            },
            "param_groups": [
                {
                    "lr": lr,
                    "momentum": group["momentum"],
                    "dampening": group["dampening"],
                    "weight_decay": decay,
                    "nesterov": group["nesterov"],
                    "maximize": False,
                    "params": list(range(len(params))),
                }
            ],
        }
        return {"step": steps, "model": model, "optimizer": optimizer}


def _forwards(base: nn.Module) -> dict[bool, Callable[..., torch.Tensor]]:
    """``base`` 's forward pass over a stack, ``(params, buffers, x) -> (P, B, C)`` logits, in the
    module's own train/eval mode: for ``x`` one batch every member sees (``True``) or one batch
    per member (``False``)."""

    def forward(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(base, (params, buffers), (x,))

    return {True: vmap(forward, in_dims=(0, 0, None)), False: vmap(forward, in_dims=(0, 0, 0))}


def _labels(labels: list[torch.Tensor], members: int) -> torch.Tensor:
    """Each member's labels ``(members, B)``: one batch's expanded, or each member's own."""
    return labels[0].expand(members, -1) if len(labels) == 1 else torch.stack(labels)


def _mixed_loss(
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    logits: torch.Tensor,
    labels: torch.Tensor,
    drawn: list[Batch],
    members: int,
) -> torch.Tensor:
    """Each member's loss on its batch, CutMix's pair where its batch was mixed
    (:meth:`~.trainer.Batch.loss`, per member: a member not mixed this step gets
    ``1·loss + 0·loss``, its loss exactly)."""
    if all(b.mixed is None for b in drawn):
        return loss_fn(logits, labels)
    partners = _labels([b.y if b.mixed is None else b.mixed[0] for b in drawn], members)
    own = [1.0 if b.mixed is None else b.mixed[1] for b in drawn]
    share = torch.tensor(own * members if len(own) == 1 else own, dtype=logits.dtype, device=logits.device)
    return share * loss_fn(logits, labels) + (1 - share) * loss_fn(logits, partners)


def _momenta(state: dict[str, Any] | None, count: int) -> list[torch.Tensor | None]:
    """The momentum buffer of each of a network's ``count`` parameters in a saved ``state``
    (None: none saved)."""
    saved = (state or {}).get("optimizer", {}).get("state", {})
    return [(saved.get(k) or {}).get("momentum_buffer") for k in range(count)]


class _Teacher:
    """The frozen starting networks the distilling members of a stack learn from (a
    :class:`~.trainer.Segment` 's distillation): one ``vmap`` ped eval-mode pass for the stack while
    any member still distils, each member's objective then ``train`` 's, per member."""

    @classmethod
    def of(cls, stack: _Stack, first: int) -> _Teacher | None:
        """The teacher of ``stack`` starting at step ``first``; None when no member distils."""
        if not stack.segments:
            return None
        rows = []
        for member in stack.members:
            seg = stack.segments[member]
            on = seg.state is not None and seg.distill_weight > 0 and seg.distill_steps > 0
            rows.append(
                (seg.distill_weight if on else 0.0, first + seg.distill_steps if on else first, seg.distill_temperature)
            )
        if all(until <= first for _, until, _ in rows):
            return None
        return cls(stack, rows)

    def __init__(self, stack: _Stack, rows: list[tuple[float, int, float]]) -> None:
        device = stack.device
        self.params = {n: p.detach().clone() for n, p in stack.params.items()}
        self.buffers = {n: b.clone() for n, b in stack.buffers.items()}
        self.base = copy.deepcopy(stack.base).eval()
        self.weight = torch.tensor([w for w, _, _ in rows], device=device)
        self.until = torch.tensor([u for _, u, _ in rows], device=device)
        self.temperature = torch.tensor([t for _, _, t in rows], device=device)
        self.forwards = _forwards(self.base)

    def objective(
        self, step: int, loss: torch.Tensor, logits: torch.Tensor, inputs: torch.Tensor, shared: bool
    ) -> torch.Tensor:
        """Each member's objective at ``step``: ``(1 - w)·loss + w·T²·KL`` while it distils, its loss after."""
        with torch.no_grad():
            teacher_logits = self.forwards[shared](self.params, self.buffers, inputs)
        distilled = distillation_loss(logits, teacher_logits, self.temperature)
        w = self.weight.to(loss.dtype)
        return torch.where(self.until > step, (1 - w) * loss + w * distilled, loss)

    def done(self, step: int) -> bool:
        """Whether no member distils from ``step`` on."""
        return bool((self.until <= step).all())

    def keep(self, index: torch.Tensor) -> None:
        self.params = {n: p[index] for n, p in self.params.items()}
        self.buffers = {n: b[index] for n, b in self.buffers.items()}
        self.weight, self.until, self.temperature = self.weight[index], self.until[index], self.temperature[index]


def _stream_after_init(device: torch.device) -> torch.Generator:
    """A generator in the state the global one is in now, right after a member's network was
    built from its seed: where ``train`` draws that member's dropout masks from."""
    generator = torch.Generator(device=device)
    if device.type == "cuda":
        generator.set_state(torch.cuda.get_rng_state(device))
    else:
        generator.set_state(torch.get_rng_state())
    return generator


class _NoiseDropout(nn.Module):
    """``nn.Dropout`` whose noise (``bernoulli(1 - p) / (1 - p)``, as ATen draws it) arrives as a
    buffer, so that under ``vmap`` each member multiplies by noise drawn from its own stream."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.register_buffer("noise", torch.empty(0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * self.noise


class _Dropouts:
    """Every dropout layer of the stacked network, and each member's stream of its noise.

    A member's noise is drawn from the stream ``train`` draws its dropout from (the global
    generator's state after the member's initialisation), layer by layer in the order the forward
    pass meets them, with the shapes of a training batch: on the CPU the masks are the ones
    ``train`` draws for that seed, and they never depend on the other members of the stack.
    """

    def __init__(
        self, base: nn.Module, network: nn.Module, batch: torch.Tensor, streams: list[torch.Generator]
    ) -> None:
        self.streams = streams
        names = {module: name for name, module in network.named_modules() if isinstance(module, nn.Dropout)}
        shapes: list[tuple[str, float, tuple[int, ...]]] = []
        hooks = [
            module.register_forward_pre_hook(
                lambda m, args: shapes.append((names[m], float(m.p), tuple(args[0].shape)))  # type: ignore[index]
            )
            for module in names
        ]
        was = network.training
        try:
            with torch.no_grad():
                network.eval()(batch)  # eval: the shapes, and no draw from anyone's stream
        finally:
            network.train(was)
            for hook in hooks:
                hook.remove()
        self.layers = [(name, p, shape) for name, p, shape in shapes if p > 0]
        for name, module in list(base.named_modules()):
            if isinstance(module, nn.Dropout):
                _replace(base, name, _NoiseDropout(float(module.p)))

    def draw(self) -> dict[str, torch.Tensor]:
        """This step's noise of every layer, ``(members, *shape)``, keyed as buffers."""
        if not self.layers:
            return {}
        noise: dict[str, list[torch.Tensor]] = {name: [] for name, _, _ in self.layers}
        for stream in self.streams:
            for name, p, shape in self.layers:
                if p >= 1:
                    noise[name].append(torch.zeros(shape, device=stream.device))
                    continue
                values = torch.empty(shape, device=stream.device).bernoulli_(1 - p, generator=stream)
                noise[name].append(values.div_(1 - p))
        return {f"{name}.noise": torch.stack(values) for name, values in noise.items()}

    def keep(self, keep: list[int]) -> None:
        """Only the members at ``keep`` go on; a member kept twice (a lone member's twin) gets a
        copy of its stream, so that each draws its own noise, the same noise."""
        streams = []
        for p in keep:
            stream = self.streams[p]
            if any(s is stream for s in streams):
                stream = torch.Generator(device=stream.device).set_state(stream.get_state())
            streams.append(stream)
        self.streams = streams


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, module)


class _BatchOrders:
    """Each member's :class:`~.trainer.BatchOrder` (the batches and augmentation ``train`` draws
    from its seed); members with equal seeds share one order, and one batch tensor."""

    def __init__(self, seeds: list[int], n: int, batch: int, device: torch.device, crop_fill: str) -> None:
        unique = sorted(set(seeds), key=seeds.index)
        self.of_member = [unique.index(s) for s in seeds]
        self.orders = [BatchOrder(s, n, batch, device, crop_fill) for s in unique]

    def batches(self, data: DataSplits, augment: bool, cutout: int, mix: tuple[float, float]) -> list[Batch]:
        """The next batch of every member (one when all share an order)."""
        drawn = [order.next(data, augment, cutout, mix) for order in self.orders]
        return drawn if len(drawn) == 1 else [drawn[u] for u in self.of_member]

    def keep(self, keep: list[int]) -> None:
        """Only the members at ``keep`` go on (their orders continue where they were; an order no
        member uses any more is dropped)."""
        of_member = [self.of_member[p] for p in keep]
        used = sorted(set(of_member))
        self.orders = [self.orders[u] for u in used]
        self.of_member = [used.index(u) for u in of_member]
