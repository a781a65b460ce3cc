"""``profile = "reference"``: the defaults it sets, and each behaviour behind them — the data
subset, the crop padding, the early abort's score — working on its own."""

from __future__ import annotations

import pytest
import torch

from datafiles import make_mnist, make_svhn
from experiments import SMALL
from taylorglo.errors import TaylorGLOError
from taylorglo.evaluators import FreshRun, Job, evaluate_job
from taylorglo.experiment import ExperimentConfig
from taylorglo.training import TrainConfig, load_dataset
from taylorglo.training.augment import augment_batch
from taylorglo.training.data import load_training_data
from taylorglo.training.trainer import build_network, train


def test_the_profile_sets_defaults_and_the_file_keeps_its_own():
    plain = ExperimentConfig.from_dict(SMALL)
    ref = ExperimentConfig.from_dict({**SMALL, "profile": "reference"})
    assert plain.profile == "default" and ref.profile == "reference"
    t = ref.training
    assert (t.data_subset, t.crop_fill, t.attempts, t.abort_fitness, t.round_params, t.normalization) == (
        "first",
        "black",
        1,
        "measured",
        4,
        "reference",
    )
    assert (ref.search.cma, ref.search.invariant_violators) == ("swiftcma", "train")
    p = plain.training
    assert (p.data_subset, p.crop_fill, p.attempts, p.abort_fitness, p.round_params, p.normalization) == (
        "random",
        "mean",
        3,
        "zero",
        None,
        "dataset",
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
        ({"training": {"normalization": "imagenet"}}, "training.normalization"),
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


def test_reference_normalization_is_the_references_constants(tmp_path):
    """SVHN trains with the reference trainer's constants instead of its computed statistics,
    MNIST with none (its pipeline fed [0, 1] pixels), and the network's input layer uses them; a
    dataset the reference did not have keeps its own."""
    make_svhn(tmp_path / "svhn")
    make_mnist(tmp_path / "mnist", n_train=30)
    svhn = TrainConfig(dataset="svhn", data_dir=str(tmp_path), model="mlp", steps=2, batch_size=4, eval_test=False)
    own = load_training_data(svhn)
    ref = load_training_data(TrainConfig(**{**vars(svhn), "normalization": "reference"}))
    want = ([109.9 / 255, 109.7 / 255, 113.8 / 255], [50.1 / 255, 50.6 / 255, 50.8 / 255])
    assert list(ref.mean + ref.std) == pytest.approx(want[0] + want[1], abs=1e-12)
    assert list(own.mean) != pytest.approx(want[0], abs=1e-3)  # computed from the 14 random images
    assert ref.train_x is own.train_x and ref.val_y is own.val_y  # the same tensors, other constants
    assert load_training_data(TrainConfig(**{**vars(svhn), "normalization": "reference"})) is ref
    layer = build_network(TrainConfig(**{**vars(svhn), "normalization": "reference"}), ref)[0]
    x = torch.rand(2, 3, 32, 32)
    expected = (x - torch.tensor(want[0]).view(1, 3, 1, 1)) / torch.tensor(want[1]).view(1, 3, 1, 1)
    assert torch.allclose(layer(x), expected, atol=1e-6)
    mnist = load_training_data(TrainConfig(dataset="mnist", data_dir=str(tmp_path), normalization="reference"))
    assert (mnist.mean, mnist.std) == ((0.0,), (1.0,))
    digits = TrainConfig(dataset="digits", normalization="reference")
    assert load_training_data(digits) is load_dataset("digits")
    result = train(TrainConfig(**{**vars(svhn), "normalization": "reference"}), loss="cross-entropy", seed=0)
    assert result.steps == 2 and 0 <= result.val_accuracy <= 1


def test_the_profile_leaves_an_objectives_training_alone():
    """With training.objective the user's code trains: the profile sets only what still applies
    (attempts, abort scoring, rounding), not the built-in trainer's data and crop fields."""
    training = {"objective": "tests_objectives:fit", "num_classes": 10}
    config = ExperimentConfig.from_dict({**SMALL, "profile": "reference", "training": training})
    t = config.training
    assert (t.attempts, t.abort_fitness, t.round_params) == (1, "measured", 4)
    assert (t.data_subset, t.crop_fill, t.normalization) == ("random", "mean", "dataset")


def test_a_recorded_config_keeps_what_its_version_ran(tmp_path):
    """A store written before a profile gained a field lists every field it had: reopened, that
    field keeps the plain default (what ran), not the profile's newer one."""
    from experiments import write_config
    from taylorglo.experiment import Store, init_experiment, open_experiment

    path = write_config(tmp_path / "ref.toml", {**SMALL, "profile": "reference"})
    directory = init_experiment(tmp_path / "run", path).directory
    assert open_experiment(directory).config.training.normalization == "reference"
    with Store(directory / Store.FILENAME) as store:
        old = store.get_meta("config")
        for name in ("normalization", "attack_space"):  # fields this version added
            del old["training"][name]
        store.set_meta("config", old)
    reopened = open_experiment(directory).config
    assert reopened.profile == "reference" and reopened.training.normalization == "dataset"
    assert reopened.training.crop_fill == "black" and reopened.search.cma == "swiftcma"  # as recorded
