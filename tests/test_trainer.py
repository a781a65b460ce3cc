"""The trainer: real training on scikit-learn's digits, small and seeded."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from taylorglo import TaylorGLOLoss
from taylorglo.errors import TaylorGLOError
from taylorglo.training import TrainConfig, load_dataset, train

#: A loss that behaves like "push the target up": f = x·y (centres 0). Trainable by the invariant.
PUSH_TARGET = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def cfg(**changes) -> TrainConfig:
    base = dict(dataset="digits", model="mlp", steps=300, lr=0.05, batch_size=64, log_every=50)
    base.update(changes)
    return TrainConfig(**base)


def test_cross_entropy_learns_digits(digits):
    result = train(cfg(steps=500), "cross-entropy", seed=0, data=digits)
    assert result.status == "ok" and result.reason is None
    assert result.val_accuracy >= 0.9 and result.test_accuracy >= 0.85
    assert result.steps == result.total_steps == 500 and result.attempts == 1
    assert result.train_loss is not None and result.train_loss < 0.5
    assert [h["step"] for h in result.history] == list(range(50, 501, 50))


def test_times_split_training_steps_from_evaluation(digits):
    with_test = train(cfg(steps=100), "cross-entropy", seed=0, data=digits)
    without = train(cfg(steps=100, eval_test=False), "cross-entropy", seed=0, data=digits)
    for result in (with_test, without):
        assert result.step_time > 0 and result.eval_time > 0
        assert result.step_time + result.eval_time <= result.wall_time
        assert result.to_dict()["eval_time"] == result.eval_time
    assert without.test_accuracy is None and with_test.test_accuracy is not None


def test_taylorglo_loss_learns_digits(digits):
    result = train(cfg(), TaylorGLOLoss(PUSH_TARGET), seed=0, data=digits)
    assert result.status == "ok" and result.val_accuracy > 0.5  # chance is 0.1


def test_deterministic_for_a_seed(digits):
    a = train(cfg(steps=120), PUSH_TARGET, seed=7, data=digits)
    b = train(cfg(steps=120), PUSH_TARGET, seed=7, data=digits)
    c = train(cfg(steps=120), PUSH_TARGET, seed=8, data=digits)
    assert a.history == b.history and a.val_accuracy == b.val_accuracy and a.val_loss == b.val_loss
    assert a.history != c.history


def test_leaves_the_callers_rng_alone(digits):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(cfg(steps=20), None, seed=5, data=digits)
    assert torch.equal(torch.rand(3), expected)


def test_partial_training_keeps_the_full_schedule(digits):
    # Full run: 1000 steps with decay at 400 and 800. A 10% window never reaches a decay.
    config = cfg(steps=1000, partial_fraction=0.1, lr_decay=[400, 800], log_every=10)
    result = train(config, None, seed=0, data=digits)
    assert result.steps == 100 and result.total_steps == 1000
    assert {h["lr"] for h in result.history} == {0.05}
    # A 50% window passes the first decay at step 400 exactly.
    result = train(config.replace(partial_fraction=0.5), None, seed=0, data=digits)
    lrs = {h["step"]: h["lr"] for h in result.history}
    assert lrs[400] == pytest.approx(0.05) and lrs[410] == pytest.approx(0.005) and result.steps == 500


def test_epoch_schedule_converts_to_steps(digits):
    schedule = cfg(steps=None, epochs=2, lr_decay=[1], batch_size=128).schedule(len(digits.train_y))
    assert schedule.steps_per_epoch == len(digits.train_y) // 128
    assert schedule.total_steps == 2 * schedule.steps_per_epoch
    assert schedule.milestones == [schedule.steps_per_epoch]


def test_early_abort_retries_with_fresh_seeds(digits):
    # Nothing reaches 101% accuracy: every attempt aborts at step 30, three attempts in all.
    result = train(cfg(abort_at=30, abort_below=1.01, attempts=3), None, seed=0, data=digits)
    assert result.status == "aborted" and "at step 30" in result.reason
    assert result.attempts == 3 and result.steps == 30 and result.test_accuracy is None
    assert result.seed != 0  # the last attempt ran with a derived seed
    # A reachable threshold passes the check and the run completes.
    result = train(cfg(abort_at=30, abort_below=0.2), None, seed=0, data=digits)
    assert result.status == "ok" and result.attempts == 1 and result.steps == 300
    assert "val_accuracy" in next(h for h in result.history if h["step"] == 30)


class NanAfter(nn.Module):
    """Cross-entropy that turns NaN after a number of calls: a candidate gone bad mid-run."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.calls, self.ce = calls, nn.CrossEntropyLoss()

    def forward(self, logits, target):
        self.calls -= 1
        value = self.ce(logits, target)
        return value * float("nan") if self.calls < 0 else value


def test_nan_loss_is_a_recorded_failure(digits):
    result = train(cfg(), NanAfter(60), seed=0, data=digits)
    assert result.status == "failed" and "non-finite training loss at step 100" in result.reason
    assert result.attempts == 1 and result.steps == 100


def test_divergent_taylorglo_candidate_fails_cleanly(digits):
    # A TaylorGLO loss is bounded (y is in [0, 1]), so it only breaks when the weights overflow:
    # huge coefficients and learning rate drive them to inf, and the softmax of inf is NaN.
    result = train(cfg(lr=1e20, steps=200), [1e4, -1e4, 1e4, 1e4, -1e4, 1e4, 0.5, 0.5], seed=0, data=digits)
    assert result.status == "failed" and "non-finite" in result.reason


def test_keep_model_and_to_dict(digits):
    result = train(cfg(steps=10), None, seed=0, data=digits, keep_model=True)
    assert isinstance(result.model, nn.Module)
    out = result.to_dict()
    assert "model" not in out and out["val_accuracy"] == result.val_accuracy
    assert all(math.isfinite(v) for v in (out["val_loss"], out["train_loss"], out["wall_time"]))


def test_cnn_on_digits(digits):
    result = train(cfg(model="mnist-cnn", steps=60, lr=0.05), None, seed=0, data=digits)
    assert result.status == "ok" and result.val_accuracy > 0.3


def test_data_fraction_is_used():
    result = train(cfg(steps=5, data_fraction=0.1), None, seed=0)
    assert result.status == "ok"
    assert len(load_dataset("digits", data_fraction=0.1).train_y) == round(0.1 * 1197)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"steps": 0}, "steps"),
        ({"steps": 10, "epochs": 1.0}, "steps"),
        ({"partial_fraction": 1.5}, "partial_fraction"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": -1.0}, "lr"),
        ({"augment": "rotate"}, "augment"),
        ({"lr_decay": [0]}, "lr_decay"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_config_is_one_line_naming_the_field(changes, field):
    with pytest.raises(TaylorGLOError) as info:
        cfg(**changes).validate("training.")
    message = str(info.value)
    assert message.startswith(f"training.{field}: ") and "\n" not in message


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(TaylorGLOError, match=r"^training\.stepz: unknown field"):
        TrainConfig.from_dict({"stepz": 10}, prefix="training.")
    assert TrainConfig.from_dict({"steps": 10, "lr_decay": 5}).lr_decay == [5]


def test_package_face_as_the_readme_shows():
    import taylorglo

    config = taylorglo.TrainConfig(dataset="digits", model="mlp", steps=2000, partial_fraction=0.1, lr=0.05)
    result = taylorglo.train(config, loss=PUSH_TARGET, seed=0)
    assert result.steps == 200 and result.status == "ok" and result.val_accuracy > 0.5
    assert callable(taylorglo.train) and taylorglo.training.train is taylorglo.train


def test_package_face_loads_the_evidence_names_on_first_use():
    # A fresh interpreter: importing the package must not pull in matplotlib (workers import it),
    # and the evidence functions must still be one import away.
    import subprocess
    import sys

    code = (
        "import sys, taylorglo\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'\n"
        "from taylorglo import run_final, compare, robustness_sweep, write_report\n"
        "from taylorglo.analysis.report import write_report as w\n"
        "assert w is write_report and set(taylorglo._EXPORTS) == set(taylorglo.__all__)\n"
        "assert all(getattr(taylorglo, name) is not None for name in taylorglo.__all__)\n"
        "try:\n    taylorglo.nonexistent\nexcept AttributeError as e:\n    print('ok', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok") and "nonexistent" in out.stdout


def test_adam_trains_and_continues_a_segment_from_its_state():
    # The reference's overrideOptimizer: torch's Adam with the config's lr and weight decay, its
    # state saved and continued like SGD's momentum (EPBT), and refused by a vectorized stack.
    from taylorglo.training.population import train_population
    from taylorglo.training.trainer import Segment

    data = load_dataset("digits")
    config = TrainConfig(dataset="digits", model="mlp", steps=60, lr=0.003, batch_size=32, log_every=20,
                         optimizer="adam", weight_decay=1e-4)  # fmt: skip
    whole = train(config, "cross-entropy", seed=3, data=data)
    assert whole.ok and whole.val_accuracy > 0.8
    assert whole.val_accuracy != train(config.replace(optimizer="sgd"), "cross-entropy", seed=3, data=data).val_accuracy
    first = train(config, "cross-entropy", seed=3, data=data, segment=Segment(0, 30), keep_state=True)
    assert "exp_avg" in next(iter(first.state["optimizer"]["state"].values()))
    second = train(config, "cross-entropy", seed=3, data=data, segment=Segment(30, 60, first.state))
    assert second.ok and second.steps == 60
    with pytest.raises(ValueError, match="steps with SGD"):
        train_population(config, ["cross-entropy"], [3], data)
    with pytest.raises(TaylorGLOError, match="training.optimizer: must be one of 'sgd', 'adam'"):
        TrainConfig(optimizer="rmsprop").validate("training.")
