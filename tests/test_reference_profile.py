"""``profile = "reference"``: the defaults it sets, and each behaviour behind them — the data
subset, the crop padding, the early abort's score — working on its own."""

from __future__ import annotations

import pytest
import torch

from experiments import SMALL
from taylorglo.errors import TaylorGLOError
from taylorglo.evaluators import FreshRun, Job, evaluate_job
from taylorglo.experiment import ExperimentConfig
from taylorglo.training import TrainConfig, load_dataset
from taylorglo.training.augment import augment_batch


def test_the_profile_sets_defaults_and_the_file_keeps_its_own():
    plain = ExperimentConfig.from_dict(SMALL)
    ref = ExperimentConfig.from_dict({**SMALL, "profile": "reference"})
    assert plain.profile == "default" and ref.profile == "reference"
    t = ref.training
    assert (t.data_subset, t.crop_fill, t.attempts, t.abort_fitness, t.round_params) == (
        "first",
        "black",
        1,
        "measured",
        4,
    )
    assert (ref.search.cma, ref.search.invariant_violators) == ("swiftcma", "train")
    p = plain.training
    assert (p.data_subset, p.crop_fill, p.attempts, p.abort_fitness, p.round_params) == (
        "random",
        "mean",
        3,
        "zero",
        None,
    )
    assert (plain.search.cma, plain.search.invariant_violators) == ("pycma", "reject")
    own = {**SMALL, "profile": "reference", "training": {**SMALL["training"], "attempts": 3, "crop_fill": "mean"}}
    mine = ExperimentConfig.from_dict(own).training
    assert (mine.attempts, mine.crop_fill, mine.data_subset) == (3, "mean", "first")
    # A store written before profiles existed records no profile: it reads as the default one.
    old = plain.to_dict()
    del old["profile"]
    assert ExperimentConfig.from_dict(old) == plain


@pytest.mark.parametrize(
    "change, field",
    [
        ({"profile": "paper"}, "profile"),
        ({"training": {"data_subset": "last"}}, "training.data_subset"),
        ({"training": {"crop_fill": "white"}}, "training.crop_fill"),
        ({"training": {"abort_fitness": "half"}}, "training.abort_fitness"),
        ({"search": {"cma": "sep"}}, "search.cma"),
    ],
)
def test_a_bad_profile_field_is_one_line_naming_it(change, field):
    data = {**SMALL, **{k: ({**SMALL.get(k, {}), **v} if isinstance(v, dict) else v) for k, v in change.items()}}
    with pytest.raises(TaylorGLOError) as err:
        ExperimentConfig.from_dict(data)
    assert str(err.value).startswith(field + ":") and "\n" not in str(err.value)


def test_the_first_subset_is_a_prefix_of_the_split():
    """The reference kept the first k of its seed-42 permutation, of which the train split is the
    head: the first k of the train split, where the default draws a second permutation."""
    full = load_dataset("digits")
    first = load_dataset("digits", data_fraction=0.25, subset="first")
    k = round(0.25 * len(full.train_y))
    assert torch.equal(first.train_x, full.train_x[:k]) and torch.equal(first.train_y, full.train_y[:k])
    assert first.val_x is full.val_x and first.mean == full.mean
    random = load_dataset("digits", data_fraction=0.25)
    assert len(random.train_y) == k and not torch.equal(random.train_x, first.train_x)
    assert load_dataset("digits", data_fraction=0.25, subset="first") is first


def test_black_crop_padding_keeps_cutout_at_the_mean():
    x = torch.full((64, 3, 8, 8), 0.5)
    g = torch.Generator().manual_seed(0)
    out = augment_batch(x, g, crop_padding=2, flip=False, cutout=0, fill=(0.5, 0.5, 0.5), crop_fill=(0.0,))
    assert (out == 0).any() and set(out.unique().tolist()) == {0.0, 0.5}  # black borders came in
    mean = augment_batch(x, torch.Generator().manual_seed(0), crop_padding=2, flip=False, fill=(0.5, 0.5, 0.5))
    assert torch.equal(mean, x)  # mean-coloured padding is invisible on a mean-coloured image
    holes = augment_batch(x, torch.Generator().manual_seed(0), crop_padding=0, flip=False, cutout=4,
                          fill=(0.25,), crop_fill=(0.0,))  # fmt: skip
    assert set(holes.unique().tolist()) == {0.25, 0.5}  # Cutout still fills with its own value


@pytest.mark.parametrize("scoring", ["zero", "measured"])
def test_an_aborted_candidate_scores_zero_or_what_it_measured(scoring):
    training = TrainConfig(dataset="digits", model="mlp", steps=40, lr=0.05, batch_size=32, log_every=10,
                           abort_at=10, abort_below=1.01, attempts=1, abort_fitness=scoring,
                           eval_test=False)  # fmt: skip
    result = evaluate_job(training, Job(0, 0, FreshRun((0, 0, 0, 1.0, 0, 0, 0, 0)), 0))
    assert result.status == "aborted" and result.steps == 10 and 0 < result.val_accuracy < 1
    assert result.fitness == (0.0 if scoring == "zero" else result.val_accuracy)


def test_a_bad_subset_is_refused_whatever_the_fraction():
    for fraction in (1.0, 0.5):
        with pytest.raises(TaylorGLOError, match=r"^subset: must be one of 'random', 'first'"):
            load_dataset("digits", data_fraction=fraction, subset="last")
