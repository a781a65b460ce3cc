"""The reference's experiment configs (issue 20): read, translated field by field, refused in one
line per field, and run. The configs are written here in the reference's schema (its files are
licensed for academic use only; none is copied)."""

from __future__ import annotations

import json
import tomllib

import pytest
import torch

from datafiles import make_mnist
from experiments import cli
from taylorglo.experiment.config import ExperimentConfig
from taylorglo.experiment.config_text import to_toml
from taylorglo.loss import TaylorGLOLoss
from taylorglo.reference.loss_strings import NotALoss, read_loss
from taylorglo.reference.translate import read_reference_json, translate


def reference_search(**base_changes) -> dict:
    """A search config in the reference's schema: AllCNN-C's 35 of 350 epochs on CIFAR-10."""
    base = {
        "target": "cifar10",
        "model": "allcnnc",
        "learningRateSchedule": {"initial": 0.01, "decayEpochs": [200, 250, 300], "decayEpochGamma": 0.1,
                                 "everyEpochGamma": 1.0},
        "epochs": 35,
        "trainingDatasetPercentage": 1.0,
        "lossFunction": "loss_x*tf.log(loss_y)",
    }  # fmt: skip
    base.update(base_changes)
    return {
        "name": "TaylorGLO_CIFAR10_AllCNNC",
        "kind": "generational",
        "evaluation": {
            "baseTrainingConfig": base,
            "evaluator": "studio",
            "evaluatedMetrics": [{"metric": "accuracy", "dataset": "validation"}],
            "maximumJobSubmissionRetries": 2,
        },
        "evolution": {
            "maxGenerations": 100,
            "fitnessMetric": {"metric": "accuracy", "dataset": "validation"},
            "maximumMissingEvaluations": 0,
        },
        "experiment": {
            "kind": "gloTaylorClassification",
            "taylorGloConfig": {"order": 3, "populationSize": 20, "sigma": 1.2, "evolveLearningRate": False,
                                "ignoreInvariantCheck": True},
        },
    }  # fmt: skip


def rendered(params: list[float], decimals: int = 4) -> str:
    """An order-3 loss written the way the reference rendered a search's best loss: its Taylor
    terms around the centres, ``tf.scalar_mul(coefficient, term)`` joined by ``+``."""
    f = f"{{:.{decimals}f}}".format
    x = f"(loss_x-{f(params[6])})".replace("--", "+")
    y = f"(loss_y-{f(params[7])})".replace("--", "+")
    terms = [y, f"tf.pow({y},2)", f"tf.pow({y},3)", f"{x}*{y}", f"{x}*tf.pow({y},2)", f"tf.pow({x},2)*{y}"]
    return "+".join(f"tf.scalar_mul({f(p)},{t})" for p, t in zip(params, terms))


# -- loss strings ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["loss_x*tf.log(loss_y)", "tf.log(loss_y)*loss_x", "1.0*loss_x*torch.log(loss_y)"])
def test_cross_entropy_is_read_as_cross_entropy(text):
    assert read_loss(text).params is None and read_loss(text).spec == "cross-entropy"


def test_a_rendered_taylor_loss_is_the_same_function():
    params = [8.2896, 0.2415, 7.8726, 8.9666, 2.0184, 7.0513, -10.9408, 7.5216]
    read = read_loss(rendered(params))
    assert read.order == 3 and read.dropped  # the expansion's y-free terms carry no gradient
    # Same loss, centred at 0: equal up to a constant, so equal gradients, on any batch.
    torch.manual_seed(0)
    logits, target = torch.randn(16, 10, dtype=torch.float64, requires_grad=True), torch.randint(0, 10, (16,))
    grads = []
    for p in (params, list(read.params)):
        (grad,) = torch.autograd.grad(TaylorGLOLoss(p)(logits, target), logits)
        grads.append(grad)
    assert torch.allclose(grads[0], grads[1], rtol=1e-9, atol=1e-12)


def test_a_hand_expanded_polynomial_gets_its_exact_coefficients():
    # -( x(1.69315 - 2y) + (0.5 - y)^2 ) = -1.69315x + 2xy - 0.25 + y - y^2
    read = read_loss("(-1.0*(loss_x*(1.69315-2.0*loss_y)+(0.5-loss_y)*(0.5-loss_y)))")
    assert read.params == (1.0, -1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0)
    assert read_loss("x*y^2 + 2*y").params == (2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("abs(loss_x-loss_y)", "neither a polynomial"),
        ("loss_x*tf.log(loss_y)===loss_x*tf.log(loss_y)", "read them with read_losses"),
        ("loss_t*loss_y", "the training progress"),
        ("loss_logits*loss_x", "the unscaled logits"),
        ("loss_y**10", "degree 10"),
        ("loss_x*loss_x", "does not depend on loss_y"),
        ("__import__('os')", "calls __import__()"),
        ("loss_y +", "not an expression"),
    ],
)
def test_what_is_not_a_trainable_loss_is_refused_with_the_reason(text, why):
    with pytest.raises(NotALoss, match=why):
        read_loss(text)


# -- translation -------------------------------------------------------------------------------


def test_a_search_translates_with_the_references_defaults_written_out():
    t = translate(reference_search(), "s.json")
    assert t.ok, t.refused
    assert translate(reference_search(target="cifar100"), "c.json").config["training"]["dataset"] == "cifar100"
    training, search = t.config["training"], t.config["search"]
    # The config's 35 epochs are the candidates' partial run of AllCNN-C's 350.
    assert training["epochs"] == 350 and search["partial_fraction"] == pytest.approx(0.1)
    assert training["lr"] == 0.01 and training["lr_decay"] == [200, 250, 300] and training["lr_gamma"] == 0.1
    assert training["weight_decay"] == 1e-3 and training["batch_size"] == 128 and training["attempts"] == 1
    assert training["round_params"] == 4  # the reference trained each loss rendered to 4 decimals
    assert search["population"] == 20 and search["generations"] == 100
    # ignoreInvariantCheck: the reference still checked every candidate and trained the failing ones.
    assert search["invariant"] == "reference" and search["invariant_violators"] == "train"
    assert t.config["kind"] == "taylorglo" and t.config["evaluator"] == {"kind": "local"}
    config = ExperimentConfig.from_dict(t.config)  # a valid taylorglo config, its network built
    assert config.candidate_training().schedule(45_000).run_steps == config.training.schedule(45_000).total_steps // 10
    # The reference-exact profile: its AllCNN-C, early abort, subset, padding and CMA-ES.
    assert t.config["profile"] == "reference" and config.profile == "reference"
    assert training["model_options"] == {"variant": "reference"}
    assert (training["abort_at"], training["abort_below"], training["abort_fitness"]) == (11, 0.15, "measured")
    t_ = config.training
    assert (t_.data_subset, t_.crop_fill, t_.abort_fitness, t_.attempts) == ("first", "black", "measured", 1)
    assert config.search.cma == "swiftcma"
    assert ExperimentConfig.from_dict(config.to_dict()) == config  # what a store records reads back the same
    # Every field of the input is accounted for, mapped or noted.
    said = "\n".join(t.mapped + t.notes)
    for field in ("epochs", "learningRateSchedule.initial", "maximumJobSubmissionRetries", "populationSize"):
        assert field in said


def test_every_field_taylorglo_cannot_run_is_one_line():
    config = reference_search(
        target="aircraft",
        auxiliaryClassifiers=3,
        overrideOptimizer="RMSprop",
        brandNewField=1,
    )
    config["experiment"]["taylorGloConfig"]["inputVariables"] = ["trueLabel", "scaledLogits", "residuals"]
    t = translate(config, "s.json")
    fields = [line.split(":", 1)[0] for line in t.refused]
    assert fields == [
        "evaluation.baseTrainingConfig.target",
        "evaluation.baseTrainingConfig.auxiliaryClassifiers",
        "evaluation.baseTrainingConfig.overrideOptimizer",
        "evaluation.baseTrainingConfig.brandNewField",
        "experiment.taylorGloConfig.inputVariables",
    ]
    assert all("\n" not in line for line in t.refused)


def test_models_wide_resnets_fgsm_and_retries():
    t = translate(
        reference_search(
            target="svhn",
            model="wrn168",
            epochs=16,
            learningRateSchedule={"initial": 0.1, "decayEpochs": [60, 120], "decayEpochGamma": 0.2,
                                  "everyEpochGamma": 1.0},
            trainingAttempts=3,
            fgsm={"epsilon": 0.1},
            cutmix={"alpha": 1.0, "probability": 0.5},
            cutout={"numberHoles": 1, "length": 16},
        ),
        "w.json",
    )  # fmt: skip
    assert t.ok, t.refused
    training, search = t.config["training"], t.config["search"]
    assert training["model"] == "wrn-16-8" and training["model_options"] == {"dropout": 0.4}  # 0.4 on SVHN
    assert training["epochs"] == 160 and search["partial_fraction"] == pytest.approx(0.1)  # SVHN's 160
    # The reference's trainer did not abort under FGSM: the retries never come into play.
    assert training["attempts"] == 3 and "abort_at" not in training and training["cutout"] == 16
    assert training["cutmix"] == 0.5 and training["cutmix_alpha"] == 1.0
    assert search["fitness"] == "fgsm" and search["fgsm_epsilon"] == 0.1
    # Its normalised-space attack is not imported silently: the note names the opt-in field.
    assert "attack_space" not in training and any('attack_space = "normalized"' in n for n in t.notes)
    adam = translate(reference_search(overrideOptimizer="Adam"), "a.json").config["training"]
    assert adam["optimizer"] == "adam"
    resnet = translate(reference_search(model="pre_resnet20", epochs=20), "r.json").config["training"]
    assert resnet["model"] == "preresnet20" and resnet["model_options"] == {"shortcut": "B"}
    for name, model, options, full in (
        ("noskip_resnet32", "resnet32", {"variant": "reference", "shortcut": "none"}, 200),
        ("resnet56", "resnet56", {"variant": "reference"}, 200),
        ("fixup_resnet56", "fixup-resnet56", None, 200),
        ("pyramidnetb110a48", "pyramidnet110-a48-bottleneck", None, 300),
        ("densenetbc100k12", "densenet-bc-100-12", None, 300),
    ):
        t = translate(reference_search(model=name, epochs=30), "m.json")
        assert t.ok, t.refused
        training = t.config["training"]
        assert training["model"] == model and training.get("model_options") == options
        assert training["epochs"] == full and training["weight_decay"] == 1e-4
        ExperimentConfig.from_dict(t.config)


def test_the_files_as_the_reference_wrote_them_are_read():
    # Its reader took trailing commas, and some files carry text after the object.
    text = json.dumps(reference_search(), indent=1).replace('"validation"}]', '"validation"},]') + "\n\nx*y notes\n"
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert read_reference_json(text) == reference_search()


def test_the_toml_writer_reads_back_to_the_same_config():
    t = translate(reference_search(model="wrn285", epochs=20), "w.json")
    data = {**t.config, "training": {**t.config["training"], "note": 'a "quoted" \\ string'}}
    assert tomllib.loads(to_toml(data, ["a comment"])) == data


# -- the CLI -----------------------------------------------------------------------------------


def legacy_mnist_search(steps: int) -> dict:
    """The first schema's MNIST search (steps, no model): 2,000 of 20,000 steps in the papers."""
    config = reference_search()
    config["evaluation"]["baseTrainingConfig"] = {
        "target": "mnist",
        "lossFunction": "loss_x*tf.log(loss_y)",
        "initialLearningRate": 0.01,
        "steps": steps,
        "trainingDatasetPercentage": 1.0,
    }
    config["evolution"]["maxGenerations"] = 1
    config["experiment"]["taylorGloConfig"].update(populationSize=4, ignoreInvariantCheck=False)
    return config


def test_init_translates_a_reference_config_and_start_runs_it(tmp_path, monkeypatch):
    make_mnist(tmp_path / "data" / "mnist", n_train=48, n_test=12, hw=(12, 12))
    monkeypatch.setenv("TAYLORGLO_DATA", str(tmp_path / "data"))
    source = tmp_path / "TaylorGLO_MNIST.json"
    source.write_text(json.dumps(legacy_mnist_search(steps=20), indent=1).replace("}\n", "},\n", 1))  # a trailing comma
    run = tmp_path / "run"
    out = cli("init", str(run), str(source), check=True).stdout
    assert "translated" in out and "search.partial_fraction = 0.001 of training.steps = 20000" in out
    assert 'training.model = "mnist-cnn"' in out and "created" in out
    assert (run / "reference-config.json").read_bytes() == source.read_bytes()
    kept = tomllib.loads((run / "config.toml").read_text())
    assert kept["training"]["model"] == "mnist-cnn" and kept["search"]["population"] == 4
    result = cli("start", str(run), "--plain", check=True)
    assert "finished, 1/1 generations" in result.stdout
    status = json.loads(cli("status", str(run), "--json", check=True).stdout)
    assert status["candidates"]["evaluated"] + status["candidates"]["rejected_invariant"] == 4


def test_convert_prints_an_editable_config_and_refusals_are_one_line_each(tmp_path):
    source = tmp_path / "wrn.json"
    source.write_text(json.dumps(reference_search(model="wrn285", epochs=20)))
    out = cli("convert", str(source), check=True).stdout
    assert out.startswith("# Translated by taylorglo from the reference's config wrn.json.")
    written = tmp_path / "wrn.toml"
    written.write_text(out)
    config = ExperimentConfig.load(written)
    assert config.training.model == "wrn-28-5" and config.search.partial_fraction == pytest.approx(0.1)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(reference_search(target="aircraft", auxiliaryClassifiers=3)))
    for command in (["convert", str(bad)], ["init", str(tmp_path / "never"), str(bad)]):
        result = cli(*command)
        assert result.returncode == 2 and result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert lines == [
            "error: bad.json: evaluation.baseTrainingConfig.target: FGVC-Aircraft is not in taylorglo",
            "error: bad.json: evaluation.baseTrainingConfig.auxiliaryClassifiers: "
            "the reference's trainer built 0 or 2 auxiliary classifiers, got 3",
        ]
    assert not (tmp_path / "never").exists()
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"name": "x", "kind": "taylorglo"}))
    result = cli("convert", str(plain))
    assert result.returncode == 2 and "is not in the reference's schema" in result.stderr


def test_loss_inputs_beyond_the_label_and_softmax_are_imported():
    """unscaledLogits and trainingCompleted map to training.loss_inputs (the ulk3 configs); the
    search then samples that polynomial's parameters. Residuals and several losses are refused."""
    config = reference_search()
    glo = config["experiment"]["taylorGloConfig"]
    glo["inputVariables"] = ["trueLabel", "scaledLogits", "unscaledLogits"]
    t = translate(config, "ulk3.json")
    assert t.ok, t.refused
    assert t.config["training"]["loss_inputs"] == ["x", "y", "logits"]
    parsed = ExperimentConfig.from_dict(t.config)
    assert len(parsed.settings.new_search(0, parsed.training.loss_inputs).ask()[0]) == 19
    glo["inputVariables"] = ["trueLabel", "trainingCompleted", "scaledLogits"]
    t = translate(config, "t.json")
    assert t.config["training"]["loss_inputs"] == ["x", "y", "t"]
    assert any("1 throughout training" in n for n in t.notes)  # the reference's progress was always 1
    for bad in (["residuals"], ["trueLabel", "scaledLogits", "lossFunctionDelimiter", "trueLabel", "scaledLogits"]):
        glo["inputVariables"] = bad
        refused = translate(config, "b.json").refused
        assert [line.split(":", 1)[0] for line in refused] == ["experiment.taylorGloConfig.inputVariables"]


def reference_oneshot(**base_changes) -> dict:
    """A one-shot config in the reference's schema: AllCNN-C trained once for its 350 epochs."""
    config = reference_search(epochs=350, **base_changes)
    return {"name": "OneShot_X", "kind": "oneShot", "evaluation": config["evaluation"]}


def test_auxiliary_classifiers_and_their_weighted_losses_are_imported():
    """auxiliaryClassifiers = 2 with a lossFunction of three ===-separated losses, the heads'
    multiples of cross-entropy, become the model option and training.aux_losses/aux_weights."""
    ce = "loss_x*tf.log(loss_y)"
    config = reference_oneshot(auxiliaryClassifiers=2, lossFunction=f"{ce}===0.3*{ce}===0.3*{ce}")
    t = translate(config, "aux.json")
    assert t.ok, t.refused
    training = t.config["training"]
    assert training["model_options"] == {"variant": "reference", "aux_heads": True}
    assert training["aux_losses"] == ["cross-entropy", "cross-entropy"] and training["aux_weights"] == [0.3, 0.3]
    parsed = ExperimentConfig.from_dict(t.config)
    assert parsed.training.heads(2) == [("cross-entropy", 0.3), ("cross-entropy", 0.3)]
    for text, words in (
        (ce, "holds 1 loss but the network has 3 outputs (its class logits and 2 auxiliary classifiers)"),
        (f"{ce}==={ce}", "holds 2 losses but the network has 3 outputs"),
        (f"2*{ce}==={ce}==={ce}", "its first loss is 2 x cross-entropy"),
        (f"{ce}===x*==={ce}", "loss 2 of 3"),
    ):
        refused = translate(reference_oneshot(auxiliaryClassifiers=2, lossFunction=text), "a.json").refused
        assert len(refused) == 1 and words in refused[0], refused
    wrn = translate(reference_oneshot(model="wrn168", auxiliaryClassifiers=2), "w.json").refused
    assert wrn == [
        "evaluation.baseTrainingConfig.auxiliaryClassifiers: the reference's trainer gave auxiliary classifiers "
        "to allcnnc and pre_resnetN only"
    ]


def test_an_evolved_loss_per_head_is_refused_in_one_line():
    config = reference_search(auxiliaryClassifiers=2, lossFunction="===".join(["loss_x*tf.log(loss_y)"] * 3))
    delimited = ["trueLabel", "scaledLogits", "lossFunctionDelimiter"] * 2 + ["trueLabel", "scaledLogits"]
    config["experiment"]["taylorGloConfig"]["inputVariables"] = delimited
    refused = translate(config, "s.json").refused
    assert len(refused) == 1 and refused[0].startswith("experiment.taylorGloConfig.inputVariables: evolves 3 losses")


@pytest.mark.parametrize(
    ("text", "name"),
    [("x*tf.sigmoid(x)", "swish"), ("tf.log(tf.sigmoid(x))", "logsigmoid"), ("nn.Softplus()(nn.ELU()(x))",
                                                                              "softplus-elu")],
)  # fmt: skip
def test_an_activation_override_is_the_model_option(text, name):
    t = translate(reference_search(overrideActivationFunction=text), "act.json")
    assert t.ok, t.refused
    assert t.config["training"]["model_options"]["activation"] == name
    ExperimentConfig.from_dict(t.config)
    # The reference's trainer read it only for its AllCNN-C, ResNets and Wide ResNets.
    other = translate(reference_search(model="densenetbc100k12", overrideActivationFunction=text), "d.json")
    assert other.ok and "activation" not in (other.config["training"].get("model_options") or {})
    assert any("ignored it for this model" in n for n in other.notes)
    bad = translate(reference_search(overrideActivationFunction="tf.abs(x)"), "b.json").refused
    assert len(bad) == 1 and bad[0].startswith("evaluation.baseTrainingConfig.overrideActivationFunction: taylorglo")


def test_read_losses_reads_each_heads_weight():
    from taylorglo.reference.loss_strings import read_losses

    ce = "loss_x*tf.log(loss_y)"
    losses = read_losses(f"{ce}===0.15*{ce}===2.0*{ce}")
    assert [(r.params, r.weight) for r in losses] == [(None, 1.0), (None, 0.15), (None, 2.0)]
    assert [r.spec for r in read_losses(ce)] == ["cross-entropy"]
    with pytest.raises(NotALoss, match="^loss 3 of 3 "):
        read_losses(f"{ce}==={ce}===loss_y +")
