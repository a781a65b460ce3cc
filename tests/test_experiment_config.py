"""Experiment config files: TOML/JSON/YAML, and one line naming the field for every mistake."""

from __future__ import annotations

import json

import pytest

from experiments import SMALL, cli, merged, write_config
from taylorglo.errors import TaylorGLOError
from taylorglo.experiment import ExperimentConfig, init_experiment
from taylorglo.experiment.config import read_config_file


def test_example_configs_all_validate():
    from pathlib import Path

    examples = sorted((Path(__file__).parent.parent / "examples").glob("*.toml"))
    assert {p.stem for p in examples} >= {
        "digits",
        "mnist",
        "mnist-10pct",
        "cifar10-allcnnc",
        "cifar10-resnet20",
        "epbt-digits",
        "oneshot-digits",
        "oneshot-mnist",
    }
    for path in examples:
        config = ExperimentConfig.load(path)
        prefix = path.stem.partition("-")[0]
        assert config.kind == (prefix if prefix in ("epbt", "oneshot") else "taylorglo")


def test_mnist_example_has_the_spec_settings():
    from pathlib import Path

    config = ExperimentConfig.load(Path(__file__).parent.parent / "examples" / "mnist.toml")
    assert config.search.population == 28 and config.search.sigma == 1.2
    assert config.training.steps == 20000 and config.search.partial_fraction == 0.1
    assert config.candidate_training().schedule(55000).run_steps == 2000


@pytest.mark.parametrize("suffix", [".toml", ".json", ".yaml"])
def test_formats_read_the_same(tmp_path, suffix):
    path = tmp_path / f"exp{suffix}"
    if suffix == ".yaml":
        yaml = pytest.importorskip("yaml")
        path.write_text(yaml.safe_dump(SMALL))
    else:
        write_config(path, SMALL)
    config = ExperimentConfig.load(path)
    assert config.search.population == 6
    assert config.training.model_options == {"hidden": 32}
    assert config.candidate_training().partial_fraction == 0.05
    assert config.candidate_training().eval_test is False
    assert ExperimentConfig.from_dict(config.to_dict()) == config


BAD = [
    ({"search": {"populaton": 8}}, "search.populaton: unknown field"),
    ({"search": {"population": "big"}}, "search.population: must be an integer >= 2"),
    ({"search": {"population": 1}}, "search.population: must be an integer >= 2"),
    ({"search": {"sigma": -1}}, "search.sigma: must be a positive number"),
    ({"search": {"invariant": "strict"}}, "search.invariant: must be one of"),
    ({"search": {"generations": 0}}, "search.generations: must be a positive integer"),
    ({"training": {"dataset": "imagenet"}}, "training.dataset: unknown dataset 'imagenet'"),
    ({"training": {"model": "vgg99"}}, "training.model: unknown model 'vgg99'"),
    ({"training": {"lr": "fast"}}, "training.lr: must be a positive number"),
    ({"training": {"stepz": 10}}, "training.stepz: unknown field"),
    ({"training": {"partial_fraction": 0.1}}, "training.partial_fraction: [training] is the full schedule"),
    ({"evaluator": {"kind": "slurm"}}, "evaluator.kind: must be one of"),
    ({"evaluator": {"workers": 0}}, "evaluator.workers: must be a positive integer"),
    ({"evaluator": {"gpus_per_candidate": 1}}, 'evaluator.gpus_per_candidate: is a Ray setting; set kind = "ray"'),
    ({"evaluator": {"kind": "ray", "gpus_per_candidate": -1}}, "evaluator.gpus_per_candidate: must be a number >= 0"),
    ({"evaluator": {"kind": "ray", "gpus_per_candidate": 1}}, "evaluator.gpus_per_candidate: GPUs are reserved but"),
    ({"evaluator": {"kind": "ray", "cpus_per_candidate": 0}}, "evaluator.cpus_per_candidate: must be a positive"),
    ({"evaluator": {"kind": "ray", "memory": "4 parsecs"}}, "evaluator.memory: must be a positive number of bytes"),
    ({"evaluator": {"kind": "ray", "max_in_flight": 0}}, "evaluator.max_in_flight: must be a positive integer"),
    ({"evaluator": {"kind": "ray", "retries": -1}}, "evaluator.retries: must be an integer >= 0"),
    ({"evaluator": {"kind": "ray", "address": ""}}, "evaluator.address: must be a string such as 'auto'"),
    ({"evaluator": {"kind": "ray", "ship_data": "yes"}}, "evaluator.ship_data: must be true or false"),
    ({"evaluator": {"lend_idle_cores": "yes"}}, 'evaluator.lend_idle_cores: must be "auto", "measure", true or false'),
    ({"evaluator": {"lend_idle_cores": 1}}, 'evaluator.lend_idle_cores: must be "auto", "measure", true or false'),
    ({"kind": "oneshot"}, 'search: the [search] table is for kind = "taylorglo"'),
    ({"seed": -3}, "seed: must be an integer from 0 to 2**32 - 1"),
    ({"colour": "blue"}, "colour: unknown field"),
]


@pytest.mark.parametrize("change,message", BAD)
def test_bad_fields_are_one_line_errors(tmp_path, change, message):
    path = write_config(tmp_path / "bad.json", merged(SMALL, **change))
    with pytest.raises(TaylorGLOError) as info:
        ExperimentConfig.load(path)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_syntax_errors_and_missing_files(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[search\npopulation = 3\n")
    with pytest.raises(TaylorGLOError, match=r"^CONFIG: broken.toml is not valid TOML: .*line 1"):
        read_config_file(broken)
    with pytest.raises(TaylorGLOError, match="CONFIG: no such file"):
        read_config_file(tmp_path / "nope.toml")
    (tmp_path / "x.ini").write_text("a=1")
    with pytest.raises(TaylorGLOError, match="use a .toml, .json, .yaml or .yml file"):
        read_config_file(tmp_path / "x.ini")


def test_cli_init_reports_bad_config_in_one_line_and_creates_nothing(tmp_path):
    for change, message in [
        ({"search": {"population": 1}}, "search.population"),
        ({"training": {"dataset": "imagenet"}}, "training.dataset"),
        ({"search": {"population": "big"}}, "search.population"),
        ({"search": {"populaton": 8}}, "search.populaton"),
    ]:
        path = write_config(tmp_path / "bad.toml", merged(SMALL, **change))
        result = cli("init", str(tmp_path / "run"), str(path))
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {message}:"), result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "run").exists()


def test_init_refuses_an_existing_directory(tmp_path):
    path = write_config(tmp_path / "ok.toml", SMALL)
    init_experiment(tmp_path / "run", path)
    assert (tmp_path / "run" / "experiment.sqlite").is_file()
    assert (tmp_path / "run" / "config.toml").read_text() == path.read_text()
    result = cli("init", str(tmp_path / "run"), str(path))
    assert result.returncode == 2
    assert "already exists" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    # --exist-ok accepts the same config (re-running a set-up script) but not another one.
    assert cli("init", str(tmp_path / "run"), str(path), "--exist-ok").returncode == 0
    other = write_config(tmp_path / "other.toml", merged(SMALL, seed=7))
    result = cli("init", str(tmp_path / "run"), str(other), "--exist-ok")
    assert result.returncode == 2 and "different config" in result.stderr


def test_start_and_status_on_a_non_experiment_are_one_line(tmp_path):
    for command in ("start", "status"):
        result = cli(command, str(tmp_path))
        assert result.returncode == 2
        assert result.stderr.startswith("error: DIR:") and "taylorglo init" in result.stderr


def test_getinvocation_prints_a_train_command(tmp_path):
    path = write_config(tmp_path / "ok.toml", SMALL)
    result = cli("getinvocation", str(path), check=True)
    line = result.stdout.strip()
    assert line.startswith("taylorglo train --dataset digits --model mlp --steps 2000 --partial-fraction 0.05")
    assert "--model-option hidden=32" in line and "--loss taylorglo:" in line and "--seed " in line
    bad = cli("getinvocation", str(path), "--candidate", "9:0")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --candidate:")


def test_ray_evaluator_settings_and_overrides():
    from taylorglo.evaluators.config import memory_bytes

    config = ExperimentConfig.from_dict(
        merged(
            SMALL,
            training={"device": "auto"},
            evaluator={
                "kind": "ray",
                "address": "auto",
                "gpus_per_candidate": 0.5,
                "cpus_per_candidate": 2,
                "memory": "3GiB",
                "max_in_flight": 64,
                "retries": 1,
                "ship_data": False,
            },
        )
    )
    e = config.evaluator
    assert (e.kind, e.address, e.gpus_per_candidate, e.max_in_flight, e.retries, e.ship_data) == (
        "ray",
        "auto",
        0.5,
        64,
        1,
        False,
    )
    assert memory_bytes(e.memory) == 3 * 1024**3 and memory_bytes("512MB") == 512 * 10**6
    assert ExperimentConfig.from_dict(config.to_dict()) == config
    # A one-run override keeps the science and swaps where it trains; switching kind drops the
    # other kind's settings.
    local = config.with_evaluator({"kind": "local"})
    assert local.evaluator.kind == "local" and local.evaluator.max_in_flight is None
    assert local.training == config.training and local.search == config.search
    back = local.with_evaluator({"kind": "ray", "address": "ray://head:10001"})
    assert back.evaluator.address == "ray://head:10001" and back.evaluator.retries == 2
    with pytest.raises(TaylorGLOError, match="^evaluator.max_in_flight: is a Ray setting"):
        config.with_evaluator({"kind": "local", "max_in_flight": 4})
    assert config.with_evaluator(None) is config


def test_the_train_command_takes_every_field_getinvocation_writes(tmp_path):
    """getinvocation writes a flag per non-default [training] field: the train command must take
    each one, or the printed command fails (it did for cutmix, adam and the reference profile)."""
    import dataclasses

    from taylorglo.cli import train
    from taylorglo.experiment.invocation import _SKIPPED, train_argv
    from taylorglo.training import TrainConfig

    flags = {o.name for o in train.params} | {"lr_decay", "model_options", "objective_options"}
    missing = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in flags | _SKIPPED]
    assert not missing, missing
    config = TrainConfig(dataset="digits", model="mlp", steps=2, batch_size=16, optimizer="adam", cutmix=0.5,
                         cutmix_alpha=0.5, data_subset="first", data_fraction=0.5, crop_fill="black",
                         normalization="reference", attack_space="normalized", abort_fitness="measured",
                         loss_inputs=["x", "y", "t"])  # fmt: skip
    params = [0.1] * 13
    argv = train_argv(config, params, 3)
    assert "taylorglo[x,y,t]:" in argv[argv.index("--loss") + 1]
    result = cli(*argv[1:], "--json", check=True)
    assert json.loads(result.stdout)["steps"] == 2
