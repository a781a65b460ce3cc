"""Data beyond images for the built-in trainer: scikit-learn's bundled tables (breast-cancer, wine)
and plug-in datasets of feature rows or token ids, through the model, the trainer, saved
networks, FGSM and a search on the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from experiments import cli
from own_data import MARKER
from taylorglo.errors import TaylorGLOError
from taylorglo.training import TrainConfig, train
from taylorglo.training.checkpoint import load_network, save_network
from taylorglo.training.data import load_dataset
from taylorglo.training.fgsm import bounds_of, fgsm_accuracy, fgsm_perturb
from taylorglo.training.trainer import build_network, check_network
from taylorglo.training.trainers import probe


def test_the_bundled_tables_are_scikit_learns_split_60_20_20():
    from sklearn.datasets import load_breast_cancer, load_wine

    for name, bunch, n, features, classes in (
        ("breast-cancer", load_breast_cancer(), 569, 30, 2),
        ("wine", load_wine(), 178, 13, 3),
    ):
        data = load_dataset(name)
        assert data.inputs == "features" and data.input_shape == (features,) and data.num_classes == classes
        assert len(data.train_y) == round(0.6 * n) and len(data.train_y) + len(data.val_y) == round(0.8 * n)
        assert len(data.train_y) + len(data.val_y) + len(data.test_y) == n
        rows = torch.cat([data.train_x, data.val_x, data.test_x])
        labels = torch.cat([data.train_y, data.val_y, data.test_y])
        order = np.random.RandomState(42).permutation(n)  # the fixed split every machine uses
        assert torch.equal(rows, torch.from_numpy(bunch.data[order].astype(np.float32)))
        assert torch.equal(labels, torch.from_numpy(bunch.target[order]))
        # Standardised per feature by the network's input layer, with the train split's statistics.
        assert data.mean == pytest.approx(tuple(data.train_x.double().mean(0).tolist()))
        assert f"{features} float32 features" in data.summary()


def test_the_input_layer_standardises_each_feature():
    data = load_dataset("breast-cancer")
    layer = build_network(TrainConfig(dataset="breast-cancer", model="mlp"), data)[0]
    z = layer(data.train_x)
    assert torch.allclose(z.mean(0), torch.zeros(30), atol=1e-4) and torch.allclose(
        z.std(0, unbiased=False), torch.ones(30), atol=1e-3
    )


def test_an_mlp_learns_the_breast_cancer_table():
    config = TrainConfig(
        dataset="breast-cancer", model="mlp", model_options={"hidden": 32}, steps=300, batch_size=32, lr=0.01
    )
    result = train(config, "cross-entropy", seed=0)
    assert result.status == "ok" and result.val_accuracy > 0.93 and result.test_accuracy > 0.9


def test_an_mlp_learns_from_token_ids_as_a_bag_of_embeddings():
    data = load_dataset("own_data:tokens")
    assert data.inputs == "tokens" and data.vocab_size == 20 and data.train_x.dtype == torch.int64
    assert data.input_shape == (12,) and "tokens (vocabulary 20)" in data.summary()
    config = TrainConfig(dataset="own_data:tokens", model="mlp", model_options={"hidden": 16}, steps=400, lr=0.1)
    network = build_network(config, data)
    assert isinstance(network[0], torch.nn.Identity)  # ids are not normalised
    result = train(config, "cross-entropy", seed=0)
    assert result.status == "ok" and result.val_accuracy > 0.9, result.val_accuracy
    has_marker = (data.test_x == MARKER).any(1).long()
    assert torch.equal(has_marker, data.test_y)  # what it had to learn


def test_plug_in_features_take_any_range():
    data = load_dataset("own_data:scaled_features")
    assert data.inputs == "features" and data.input_shape == (3,)
    assert data.std[0] > 100 and data.std[1] < 0.01  # per feature, from the train split
    result = train(
        TrainConfig(dataset="own_data:scaled_features", model="mlp", steps=200, lr=0.05), "cross-entropy", seed=0
    )
    assert result.val_accuracy > 0.9


@pytest.mark.parametrize(
    ("dataset", "model", "changes", "message"),
    [
        (
            "breast-cancer",
            "mnist-cnn",
            {},
            "'mnist-cnn' takes images (C, H, W) but this dataset holds features of shape (30,); use model = 'mlp'",
        ),
        ("own_data:tokens", "allcnnc", {}, "holds token ids of shape (12,)"),
        ("breast-cancer", "mlp", {"cutout": 4}, "training.cutout: breast-cancer holds features, which are not cropped"),
        ("breast-cancer", "mlp", {"augment": "crop-flip"}, "training.augment: breast-cancer holds features"),
        ("breast-cancer", "mlp", {"cutmix": 0.5}, "training.cutmix: breast-cancer holds features"),
        ("own_data:bad_tokens", "mlp", {}, "token ids must lie in 0..vocab_size-1 (got 7..7, vocab_size 5)"),
        (
            "own_data:features_with_crops",
            "mlp",
            {},
            "augment 'crop-flip' crops and flips images; features take augment 'none'",
        ),
    ],
)
def test_what_does_not_fit_such_data_is_one_line(dataset, model, changes, message):
    with pytest.raises(TaylorGLOError) as info:
        probe(TrainConfig(dataset=dataset, model=model, **changes))
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("dataset", ["wine", "own_data:tokens"])
def test_saved_networks_of_features_and_tokens_come_back_the_same(tmp_path, dataset):
    data = load_dataset(dataset)
    config = TrainConfig(dataset=dataset, model="mlp", model_options={"hidden": 8}, steps=20)
    result = train(config, "cross-entropy", seed=0, keep_model=True)
    path = save_network(
        result.model,
        tmp_path / "net.pt",
        model_name="mlp",
        model_options={"hidden": 8},
        data=data,
        loss="cross-entropy",
    )
    loaded, info = load_network(path)
    assert info["inputs"] == data.inputs
    with torch.no_grad():
        assert torch.equal(loaded(data.test_x), result.model.eval()(data.test_x))


def test_fgsm_on_features_steps_in_standard_deviations_and_does_not_clip():
    data = load_dataset("own_data:scaled_features")
    network = check_network(TrainConfig(dataset="own_data:scaled_features", model="mlp"), data)
    bounds = bounds_of(data)
    assert bounds.clip is None and bounds.unit == "feature std"
    moved = fgsm_perturb(network, data.test_x, data.test_y, torch.nn.CrossEntropyLoss(), 0.5, bounds) - data.test_x
    step = moved.abs().max(0).values
    assert step.tolist() == pytest.approx([0.5 * s for s in data.std], rel=1e-4)  # half a std of each feature


def test_fgsm_refuses_token_ids_in_one_line():
    data = load_dataset("own_data:tokens")
    network = check_network(TrainConfig(dataset="own_data:tokens", model="mlp"), data)
    with pytest.raises(TaylorGLOError, match="integer token ids .* no gradient"):
        fgsm_accuracy(network, data.test_x, data.test_y, torch.nn.CrossEntropyLoss(), 0.1)


def test_a_tabular_search_final_and_robustness_on_the_cli(tmp_path):
    from pathlib import Path

    example = Path(__file__).parent.parent / "examples" / "breast-cancer.toml"
    run = tmp_path / "run"
    cli("init", str(run), str(example), check=True)
    out = cli("start", str(run), check=True).stdout
    assert "finished, 6/6 generations" in out and "--dataset breast-cancer --model mlp" in out
    best = json.loads((run / "best.json").read_text())
    assert best["fitness"] > 0.9
    cli("final", str(run), "--repeats", "2", check=True)
    out = cli("robustness", str(run), "--eps", "0.25", check=True).stdout
    assert "eps in feature std" in out
    result = json.loads((run / "robustness.json").read_text())
    for entry in result["losses"]:
        clean, attacked = entry["accuracy"]
        assert clean["n"] == 2 and 0.0 < attacked["mean"] < clean["mean"]
