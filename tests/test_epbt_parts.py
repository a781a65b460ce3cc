"""EPBT's parts on their own: config checks, genes, exploit and novelty selection, the trainer's
segments and distillation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from experiments import SMALL, merged
from taylorglo import TaylorGLOLoss, invariant_holds
from taylorglo.epbt.config import EPBTConfig
from taylorglo.epbt.population import cross_entropy_like, initial_genes, mutate
from taylorglo.epbt.selection import (
    is_novelty_step,
    novelty_pulse,
    novelty_select,
    ranking,
    select,
    tournament,
    truncation,
)
from taylorglo.errors import TaylorGLOError
from taylorglo.experiment import ExperimentConfig
from taylorglo.training import TrainConfig, train
from taylorglo.training.trainer import Segment

EPBT = merged({k: v for k, v in SMALL.items() if k != "search"}, kind="epbt", epbt={"population": 4, "ready_steps": 25})


# -- config -------------------------------------------------------------------------------------


def test_epbt_config_parses_with_defaults_and_switchable_parts():
    config = ExperimentConfig.from_dict(merged(EPBT, epbt={"novelty_pulsation": {"cycle": 3}, "distillation": True}))
    e = config.epbt
    assert config.kind == "epbt" and config.population == 4
    assert e.novelty_pulsation.cycle == 3 and e.novelty_pulsation.multiplier == 2.0
    assert e.distillation.weight == 0.5 and e.distillation.temperature == 2.0
    assert ExperimentConfig.from_dict(config.to_dict()) == config
    off = ExperimentConfig.from_dict(merged(EPBT, epbt={"novelty_pulsation": False})).epbt
    assert off.novelty_pulsation is None and off.distillation is None
    # Ready interval: steps, epochs, or a tenth of the schedule.
    assert e.ready_interval(steps_per_epoch=18, total_steps=2000) == 25
    assert EPBTConfig(ready_epochs=2.0).ready_interval(18, 2000) == 36
    assert EPBTConfig().ready_interval(18, 2000) == 200


@pytest.mark.parametrize(
    "epbt, message",
    [
        ({"population": 1}, "epbt.population: must be an integer >= 2"),
        ({"ready_steps": 10, "ready_epochs": 1.0}, "epbt.ready_steps: give either"),
        ({"exploit": "roulette"}, "epbt.exploit: must be one of 'truncation', 'tournament'"),
        ({"fraction": 0.7}, "epbt.fraction: must be a number in (0, 0.5]"),
        ({"evolve": ["loss", "momentum"]}, "epbt.evolve: must be a list of 'loss', 'lr', 'weight_decay'"),
        ({"initial_loss": [1.0, 2.0]}, 'epbt.initial_loss: must be "random", "cross-entropy" or a list of 8'),
        ({"novelty_pulsation": {"cycle": 0}}, "epbt.novelty_pulsation.cycle: must be a positive integer"),
        ({"novelty_pulsation": {"behavior": "x"}}, "epbt.novelty_pulsation.behavior: unknown field"),
        ({"distillation": {"weight": 2}}, "epbt.distillation.weight: must be a number in (0, 1]"),
        ({"lr_range": [1.0, 0.1]}, "epbt.lr_range: must be [low, high]"),
        ({"popsize": 3}, "epbt.popsize: unknown field"),
    ],
)
def test_bad_epbt_fields_are_one_line_errors_naming_the_field(epbt, message):
    with pytest.raises(TaylorGLOError) as err:
        ExperimentConfig.from_dict(merged(EPBT, epbt=epbt))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_epbt_and_search_tables_belong_to_their_kinds():
    with pytest.raises(
        TaylorGLOError, match=r'^search: the \[search\] table is for kind = "taylorglo"; .*settings go in \[epbt\]'
    ):
        ExperimentConfig.from_dict(merged(EPBT, search={"population": 4}))
    with pytest.raises(TaylorGLOError, match=r'^epbt: the \[epbt\] table is for kind = "epbt"'):
        ExperimentConfig.from_dict(merged(SMALL, epbt={"population": 4}))


# -- genes ----------------------------------------------------------------------------------------


def test_cross_entropy_like_start_is_trainable_and_pushes_the_target_up():
    params = cross_entropy_like(3)
    assert params == [0.0, 0.0, 0.0, 2.0, -2.0, 0.0, 0.0, 0.5]
    for n in (2, 10, 100):
        assert invariant_holds(params, n, "reference") and invariant_holds(params, n, "gradient")
    # Its gradient w.r.t. the logits points the same way as cross-entropy's on every example.
    logits = torch.randn(64, 10, requires_grad=True)
    target = torch.randint(0, 10, (64,))
    (g1,) = torch.autograd.grad(TaylorGLOLoss(params)(logits, target), logits)
    (g2,) = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, target), logits)
    rows = torch.arange(64)
    assert (g1[rows, target] < 0).all() and (g2[rows, target] < 0).all()


def test_initial_genes_and_mutation_respect_the_invariant_and_ranges():
    e = EPBTConfig(population=6, initial_hyperparameters="random", mutate_sigma=1.0)
    training = TrainConfig(lr=0.1)
    rng = np.random.default_rng(0)
    genes = initial_genes(e, training, 10, rng)
    assert len(genes) == 6 and len({g.params for g in genes}) == 6
    lo, hi = e.lr_bounds(0.1)
    for g in genes:
        assert invariant_holds(g.params, 10, "reference")
        assert lo <= g.lr <= hi and 1e-6 <= g.weight_decay <= 1e-2
    redraws = 0
    for _ in range(50):
        child, r = mutate(genes[0], e, training, 10, rng)
        redraws += r
        assert invariant_holds(child.params, 10, "reference") and child.params != genes[0].params
        assert lo <= child.lr <= hi
    assert redraws > 0  # with sigma 1 some mutations fail the invariant and were drawn again
    # Plain PBT: cross-entropy for everyone, and the loss never mutates.
    pbt = EPBTConfig(population=3, evolve=["lr", "weight_decay"], initial_loss="cross-entropy")
    genes = initial_genes(pbt, training, 10, rng)
    assert all(g.params is None for g in genes)
    assert mutate(genes[0], pbt, training, 10, rng)[0].params is None


# -- selection ------------------------------------------------------------------------------------


def test_truncation_replaces_the_worst_and_every_failed_member_with_copies_of_the_best():
    fitness = [0.5, 0.9, 0.1, 0.7, 0.0, 0.8, 0.3, 0.6]
    failed = [False, False, False, False, True, False, False, False]
    choices = truncation(fitness, 0.25, np.random.default_rng(1), failed)
    replaced = {c.index for c in choices if c.action == "exploit"}
    assert replaced == {2, 4}  # the two worst (4 failed, 2 is 0.1)
    assert all(c.parent in (1, 5) for c in choices if c.action == "exploit")
    assert all(c.parent == c.index for c in choices if c.action == "continue")
    # A failed member in the top by fitness is replaced all the same.
    choices = truncation([0.9, 0.8, 0.1, 0.2], 0.25, np.random.default_rng(1), [False, True, False, False])
    assert {c.index for c in choices if c.action == "exploit"} == {1, 2}


def test_tournament_copies_only_fitter_members():
    fitness = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    choices = tournament(fitness, np.random.default_rng(3), [False] * 6)
    for c in choices:
        if c.action == "exploit":
            assert fitness[c.parent] > fitness[c.index]
    assert choices[5].action == "continue"  # nobody beats the best


def test_novelty_select_on_a_hand_made_behaviour_set():
    # Six members on a line; fitness decreases with the index. Behaviours (1-D):
    #   0: 0.0 (best)  1: 0.1  2: 0.2  3: 1.0  4: 0.5  5: 5.0 (outside the pool)
    fitness = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    behaviours = [[0.0], [0.1], [0.2], [1.0], [0.5], [5.0]]
    # Pool of the 5 fittest, keep 3: the best (0), then the farthest from it (3, at 1.0), then the one
    # whose nearest chosen member is farthest: 4 (0.5 from both) beats 2 (0.2 from 0).
    assert novelty_select(fitness, behaviours, keep=3, pool=5) == [0, 3, 4]
    # By fitness alone it would have been [0, 1, 2]; member 5 is never in the pool.
    assert novelty_select(fitness, behaviours, keep=3, pool=1) == [0, 1, 2]
    # Ties in distance go to the fitter member: 1 and 2 mirror each other around 0.
    assert novelty_select([0.9, 0.5, 0.8], [[0.0], [1.0], [-1.0]], keep=2, pool=3) == [0, 2]
    # Failed members are not eligible, and the pool counts eligible members only: without 3, the five
    # fittest reach member 5, the farthest from 0; then 4 (0.5 from 0) beats 2 (0.2) and 1 (0.1).
    assert novelty_select(fitness, behaviours, keep=3, pool=5, eligible=[True, True, True, False, True, True]) == [
        0,
        5,
        4,
    ]


def test_novelty_pulsation_runs_on_its_cycle_and_removes_the_configured_share():
    e = EPBTConfig.from_dict({"population": 6, "novelty_pulsation": {"cycle": 2, "remove_fraction": 0.5}})
    assert [is_novelty_step(s, e) for s in range(1, 6)] == [False, True, False, True, False]
    fitness = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    behaviours = [[0.0], [0.1], [0.2], [1.0], [0.5], [5.0]]
    choices = novelty_pulse(fitness, behaviours, e, np.random.default_rng(0), [False] * 6)
    kept = [c.index for c in choices if c.action == "continue"]
    # keep 6 - round(6 * 0.5) = 3; pool round(6 * 0.5 * 2) = 6 holds member 5, the farthest of all.
    assert kept == [0, 3, 5]
    assert all(c.parent in kept for c in choices if c.action == "novelty")
    assert select(2, fitness, behaviours, [False] * 6, e, np.random.default_rng(0)) == choices
    with pytest.raises(ValueError):
        select(1, fitness, behaviours, [True] * 6, e, np.random.default_rng(0))
    assert ranking([0.5, 0.9, 0.5]) == [1, 0, 2]


# -- the trainer's segments -------------------------------------------------------------------------

SEG = TrainConfig(dataset="digits", model="mlp", steps=120, batch_size=32, model_options={"hidden": 16}, log_every=20)


def test_a_segment_continues_a_saved_state_and_is_a_function_of_state_and_seed():
    first = train(SEG, "cross-entropy", seed=1, segment=Segment(0, 60), keep_state=True)
    assert first.ok and first.steps == 60 and first.state["step"] == 60
    assert first.val_class_accuracy is not None and len(first.val_class_accuracy) == 10
    runs = [
        train(SEG, "cross-entropy", seed=2, segment=Segment(60, 120, first.state), keep_state=True) for _ in range(2)
    ]
    assert runs[0].steps == 120 and runs[0].history[0]["step"] == 80
    for key, value in runs[0].state["model"].items():
        assert torch.equal(value, runs[1].state["model"][key])
    assert runs[0].val_accuracy == runs[1].val_accuracy > first.val_accuracy
    # The optimiser state (momentum) was carried over: without it the continuation differs.
    blank = {**first.state, "optimizer": {"state": {}, "param_groups": first.state["optimizer"]["param_groups"]}}
    other = train(SEG, "cross-entropy", seed=2, segment=Segment(60, 120, blank), keep_state=True)
    assert any(not torch.equal(v, other.state["model"][k]) for k, v in runs[0].state["model"].items())
    # The segment's own hyperparameters replace the saved ones.
    hot = train(
        SEG.replace(lr=0.5, weight_decay=0.01),
        "cross-entropy",
        seed=2,
        segment=Segment(60, 120, first.state),
        keep_state=True,
    )
    groups = hot.state["optimizer"]["param_groups"]
    assert groups[0]["lr"] == 0.5 and groups[0]["weight_decay"] == 0.01


def test_distillation_keeps_a_child_closer_to_the_network_it_inherited():
    parent = train(SEG, "cross-entropy", seed=1, segment=Segment(0, 60), keep_state=True)
    harsh = [0.0, 0.0, 0.0, 5.0, -8.0, 0.0, 0.0, 0.5]  # a very different loss for the child

    def drift(distill_weight: float) -> float:
        child = train(
            SEG.replace(lr=0.2),
            harsh,
            seed=3,
            segment=Segment(60, 120, parent.state, distill_weight, 2.0, 60),
            keep_state=True,
        )
        return sum(
            float((child.state["model"][k].float() - v.float()).norm()) for k, v in parent.state["model"].items()
        )

    assert drift(0.9) < drift(0.0)


def test_train_schedule_follows_its_stretches_and_equals_segments_chained_by_hand():
    from taylorglo.training.trainer import ScheduleStep, train_schedule

    ce_like = tuple(cross_entropy_like(3))
    steps = (
        ScheduleStep(0, 40, None, 0.05, 0.0),
        ScheduleStep(40, 80, ce_like, 0.02, 1e-4, 0.5, 2.0, 10),
        ScheduleStep(80, 120, ce_like, 0.01, 1e-4),
    )
    result = train_schedule(SEG, steps, seed=5)
    assert result.ok and result.steps == 120 and result.test_accuracy is not None
    assert [h["lr"] for h in result.history] == [0.05, 0.05, 0.02, 0.02, 0.01, 0.01]
    # The same thing by hand, with the stretch seeds train_schedule documents.
    state = None
    for k, s in enumerate(steps):
        seed = int(np.random.SeedSequence([5, k]).generate_state(1)[0])
        r = train(
            SEG.replace(lr=s.lr, weight_decay=s.weight_decay),
            None if s.params is None else list(s.params),
            seed,
            segment=Segment(s.start, s.stop, state, s.distill_weight, s.distill_temperature, s.distill_steps),
            keep_state=True,
        )
        state = r.state
    assert r.val_accuracy == result.val_accuracy
