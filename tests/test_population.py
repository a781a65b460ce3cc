"""Vectorized populations (training/population.py): each member is the training train() runs
with its loss and seed, up to floating-point order."""

from __future__ import annotations

import pytest
import torch

from taylorglo.loss import CrossEntropyLoss, TaylorGLOLoss, population_loss
from taylorglo.training import TrainConfig, train
from taylorglo.training.data import load_dataset
from taylorglo.training.population import train_population, train_schedule_population
from taylorglo.training.trainer import ScheduleStep, Segment, train_schedule

#: Losses the invariant accepts that train digits well, and cross-entropy.
GOOD = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
OTHER = [-1.0, 0.5, 0.2, 2.0, 0.3, 0.1, 0.0, 0.0]


def cfg(**changes) -> TrainConfig:
    base = dict(dataset="digits", model="mlp", steps=120, lr=0.05, batch_size=64, log_every=20)
    base.update(changes)
    return TrainConfig(**base)


def _agree(member, single, rtol=1e-4):
    assert member.status == single.status and member.reason == single.reason
    assert member.steps == single.steps and member.attempts == single.attempts and member.seed == single.seed
    assert [h["step"] for h in member.history] == [h["step"] for h in single.history]
    for a, b in zip(member.history, single.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=rtol, abs=1e-6, nan_ok=True)
        assert a["train_accuracy"] == pytest.approx(b["train_accuracy"], abs=2 / 64)
    assert member.val_accuracy == pytest.approx(single.val_accuracy, abs=1 / 300)
    assert member.val_loss == pytest.approx(single.val_loss, rel=rtol, abs=1e-6, nan_ok=True)
    if single.test_accuracy is not None:
        assert member.test_accuracy == pytest.approx(single.test_accuracy, abs=1 / 300)


def test_population_loss_is_each_members_loss():
    torch.manual_seed(0)
    logits, target = torch.randn(3, 16, 10), torch.randint(0, 10, (3, 16))
    for losses in (
        [TaylorGLOLoss(GOOD), TaylorGLOLoss(OTHER), TaylorGLOLoss([0.3] * 8)],
        [CrossEntropyLoss()] * 3,
        [TaylorGLOLoss(GOOD), CrossEntropyLoss(), TaylorGLOLoss(OTHER)],
    ):
        expected = torch.stack([loss(z, t) for loss, z, t in zip(losses, logits, target)])
        assert torch.allclose(population_loss(losses)(logits, target), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("same_seed", [True, False], ids=["one-seed", "own-seeds"])
def test_each_member_trains_as_train_does(same_seed):
    data = load_dataset("digits")
    config = cfg()
    losses = [GOOD, OTHER, "cross-entropy", GOOD]
    seeds = [7, 7, 7, 7] if same_seed else [1, 2, 3, 4]
    members = train_population(config, losses, seeds, data)
    for loss, seed, member in zip(losses, seeds, members):
        _agree(member, train(config, loss, seed=seed, data=data))


def test_members_that_abort_or_diverge_leave_the_stack_and_retry_as_train_does():
    data = load_dataset("digits")
    # Zero coefficients train nothing: chance accuracy, aborted at step 40 on every attempt;
    # huge ones diverge to a non-finite loss. GOOD trains on past both.
    config = cfg(abort_at=40, abort_below=0.3, attempts=2)
    losses = [[0.0] * 8, GOOD, [0.0, 0.0, 1e30, 0.0, 0.0, 0.0, 0.0, 0.0]]
    members = train_population(config, losses, [5, 5, 5], data)
    singles = [train(config, loss, seed=5, data=data) for loss in losses]
    assert [m.status for m in members] == [s.status for s in singles] == ["aborted", "ok", "failed"]
    for member, single in zip(members, singles):
        _agree(member, single)
    assert members[0].attempts == 2 and members[0].seed == singles[0].seed != 5


def test_kept_networks_are_the_members(tmp_path):
    data = load_dataset("digits")
    config = cfg(steps=40)
    members = train_population(config, [GOOD, OTHER], [1, 2], data, keep_model=True)
    for member, loss, seed in zip(members, [GOOD, OTHER], [1, 2]):
        single = train(config, loss, seed=seed, data=data, keep_model=True)
        with torch.no_grad():
            a, b = member.model.eval()(data.test_x), single.model.eval()(data.test_x)
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4)


def _running_stats_gap(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """The largest difference of two networks' BatchNorm running statistics, relative to b's size."""
    sa, sb = a.state_dict(), b.state_dict()
    keys = [k for k in sb if "running" in k]
    assert keys
    return max(((sa[k] - sb[k]).abs().max() / sb[k].abs().max().clamp(min=1e-12)).item() for k in keys)


def test_batchnorm_members_keep_their_own_running_statistics():
    data = load_dataset("digits")
    # A few steps only: BatchNorm networks amplify the floating-point order of batched kernels
    # within tens of steps (a TaylorGLO loss more than cross-entropy), so longer runs drift apart.
    config = cfg(model="resnet20", steps=4, batch_size=32, log_every=2)
    members = train_population(config, [GOOD, "cross-entropy"], [1, 2], data, keep_model=True)
    for member, loss, seed in zip(members, [GOOD, "cross-entropy"], [1, 2]):
        single = train(config, loss, seed=seed, data=data, keep_model=True)
        assert member.status == single.status == "ok"
        for a, b in zip(member.history, single.history):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-3)
        assert _running_stats_gap(member.model, single.model) < 1e-2
        assert member.val_accuracy == pytest.approx(single.val_accuracy, abs=0.02)


def test_dropout_members_train_and_a_stack_repeats_itself():
    data = load_dataset("digits")
    config = cfg(model="mnist-cnn", model_options={"width": 0.25}, steps=30, log_every=10)
    members = train_population(config, [GOOD, "cross-entropy"], [1, 2], data)
    assert all(m.status == "ok" for m in members) and members[1].val_accuracy > 0.5
    again = train_population(config, [GOOD, "cross-entropy"], [1, 2], data)
    assert [m.val_accuracy for m in again] == [m.val_accuracy for m in members]  # its dropout stream is fixed
    assert [m.history for m in again] == [m.history for m in members]


@pytest.mark.parametrize(
    ("model", "options"), [("mlp", {}), ("mnist-cnn", {"width": 0.25}), ("resnet20", {})], ids=["mlp", "dropout", "bn"]
)
def test_a_members_training_does_not_depend_on_its_stack(model, options):
    # What makes a resumed generation exact: after kill -9 its pending members train in a smaller
    # stack than the killed one, and must get the killed stack's results, bit for bit.
    data = load_dataset("digits")
    config = cfg(model=model, model_options=options, steps=20, batch_size=32, log_every=10)
    alone = train_population(config, [GOOD], [1], data)[0]
    for losses, seeds, at in (
        ([OTHER, GOOD, "cross-entropy"], [2, 1, 3], 1),
        ([GOOD, OTHER], [1, 1], 0),
        ([[0.0, 0.0, 1e30, 0.0, 0.0, 0.0, 0.0, 0.0], GOOD], [1, 1], 1),  # its mate diverges and leaves
    ):
        member = train_population(config, losses, seeds, data)[at]
        assert member.history == alone.history and member.val_loss == alone.val_loss
        assert member.val_class_accuracy == alone.val_class_accuracy


def test_dropout_members_draw_the_masks_train_draws():
    data = load_dataset("digits")
    config = cfg(model="mnist-cnn", model_options={"width": 0.25}, steps=30, log_every=10)
    for member, loss, seed in zip(
        train_population(config, [GOOD, "cross-entropy"], [1, 2], data), [GOOD, "cross-entropy"], [1, 2]
    ):
        _agree(member, train(config, loss, seed=seed, data=data), rtol=1e-5)


def _states(config, data):
    """Two networks' saved states after 40 steps (weights and momentum), as EPBT checkpoints hold them."""
    return [
        train(config, loss, seed=seed, data=data, segment=Segment(0, 40), keep_state=True).state
        for loss, seed in ((GOOD, 1), (OTHER, 2))
    ]


def test_segments_continue_each_members_state_with_its_own_hyperparameters_and_distillation():
    # EPBT's stretches: each member continues its own saved network and momentum with its own
    # lr and weight decay, distilling from its starting network where asked, as train() does.
    data = load_dataset("digits")
    config = cfg(steps=80, batch_size=32, log_every=10, lr_decay=[60], lr_gamma=0.1)
    s1, s2 = _states(config, data)
    segments = [
        Segment(40, 80, s1, 0.5, 2.0, 10),
        Segment(40, 80, s2),
        Segment(40, 80, s1, 0.3, 1.0, 20),
        Segment(40, 80),
    ]
    hyper = [(0.02, 1e-4), (0.05, 0.0), (0.1, 5e-4), (0.03, 1e-3)]
    losses, seeds = [OTHER, GOOD, "cross-entropy", GOOD], [11, 12, 13, 14]
    members = train_population(config, losses, seeds, data, segments=segments, hyper=hyper, keep_state=True)
    for member, segment, (lr, decay), loss, seed in zip(members, segments, hyper, losses, seeds):
        single = train(
            config.replace(lr=lr, weight_decay=decay), loss, seed=seed, data=data, segment=segment, keep_state=True
        )
        _agree(member, single)
        assert [h["lr"] for h in member.history] == [h["lr"] for h in single.history]  # the milestone at step 60
        assert member.history[-1]["lr"] == pytest.approx(lr * 0.1)
        assert member.state["step"] == single.state["step"] == 80
        assert member.state["optimizer"]["param_groups"] == single.state["optimizer"]["param_groups"]
        for part in ("model",):
            a, b = member.state[part], single.state[part]
            assert list(a) == list(b) and all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-5) for k in b)
        a, b = member.state["optimizer"]["state"], single.state["optimizer"]["state"]
        assert set(a) == set(b)
        assert all(torch.allclose(a[k]["momentum_buffer"], b[k]["momentum_buffer"], rtol=1e-3, atol=1e-5) for k in b)


def test_a_segments_result_does_not_depend_on_its_stack():
    # A resumed EPBT generation trains its pending members in a smaller stack: bit for bit the same.
    data = load_dataset("digits")
    mlp = cfg(steps=80, batch_size=32, log_every=10)
    s1, s2 = _states(mlp, data)
    mine = Segment(40, 80, s1, 0.5, 2.0, 10)
    alone = train_population(mlp, [GOOD], [5], data, segments=[mine], hyper=[(0.02, 1e-4)], keep_state=True)[0]
    with_mates = train_population(
        mlp,
        [OTHER, GOOD, [0.0, 0.0, 1e30, 0.0, 0.0, 0.0, 0.0, 0.0]],  # a mate that diverges and leaves
        [4, 5, 6],
        data,
        segments=[Segment(40, 80, s2), mine, Segment(40, 80, s2, 0.2, 1.0, 30)],
        hyper=[(0.1, 0.0), (0.02, 1e-4), (0.05, 5e-4)],
        keep_state=True,
    )
    member = with_mates[1]
    assert with_mates[2].status == "failed"
    assert member.history == alone.history and member.val_loss == alone.val_loss
    assert all(torch.equal(member.state["model"][k], alone.state["model"][k]) for k in alone.state["model"])


def test_schedules_replayed_at_once_are_each_train_schedule():
    data = load_dataset("digits")
    config = cfg(steps=90, batch_size=32, log_every=10)
    schedules = [
        (ScheduleStep(0, 30, tuple(GOOD), 0.05, 0.0), ScheduleStep(30, 90, tuple(OTHER), 0.02, 1e-4, 0.5, 2.0, 10)),
        (ScheduleStep(0, 30, None, 0.1, 5e-4), ScheduleStep(30, 90, tuple(GOOD), 0.05, 0.0)),
    ]
    replayed = train_schedule_population(config, schedules, [3, 4], data, keep_model=True)
    for member, steps, seed in zip(replayed, schedules, [3, 4]):
        single = train_schedule(config, steps, seed, data, keep_model=True)
        _agree(member, single)
        assert member.seed == seed and member.state is None and member.model is not None


def test_cutmix_members_train_as_train_does():
    # CutMix draws from each member's batch order: a member's mixes, and its loss pair, are
    # the ones train() makes for its seed; a member whose batch is not mixed in a step while its
    # mates' are gets its plain loss exactly.
    data = load_dataset("digits")
    config = cfg(steps=60, batch_size=32, log_every=10, cutmix=0.5, cutmix_alpha=1.0)
    losses, seeds = [GOOD, "cross-entropy", OTHER], [1, 2, 3]
    members = train_population(config, losses, seeds, data)
    for member, loss, seed in zip(members, losses, seeds):
        _agree(member, train(config, loss, seed=seed, data=data))
    alone = train_population(config, [GOOD], [1], data)[0]
    assert alone.history == members[0].history
    plain = train(cfg(steps=60, batch_size=32, log_every=10), GOOD, seed=1, data=data)
    assert plain.history != members[0].history  # CutMix changed the training
