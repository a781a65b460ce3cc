"""User objectives for the tests (``[training] objective = "own_objective:..."``): a plain PyTorch
loop with AdamW on scikit-learn's bundled breast-cancer table, as a researcher would write one,
and objectives that fail in each way a user's code can."""

from __future__ import annotations

import math
from functools import cache

import torch
from torch import nn


@cache
def _table() -> tuple[torch.Tensor, ...]:
    """Standardised features, split 60/20/20 by a fixed permutation."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    x = torch.tensor(bunch.data, dtype=torch.float32)
    y = torch.tensor(bunch.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(42))
    x, y = x[order], y[order]
    a, b = int(0.6 * len(y)), int(0.8 * len(y))
    mean, std = x[:a].mean(0), x[:a].std(0)
    x = (x - mean) / std
    return x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:]


def objective(loss_fn: nn.Module, trial) -> dict:
    """A small MLP, AdamW, minibatches in an order drawn from ``trial.seed``."""
    train_x, train_y, val_x, val_y, test_x, test_y = _table()
    torch.manual_seed(trial.seed)
    model = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 2)).to(trial.device)
    opt = torch.optim.AdamW(model.parameters(), lr=trial.options.get("lr", 1e-2))
    epochs = max(1, round(trial.options.get("epochs", 10) * trial.budget))
    order = torch.Generator().manual_seed(trial.seed)

    def accuracy(x: torch.Tensor, y: torch.Tensor) -> float:
        with torch.no_grad():
            return float((model(x).argmax(1) == y).float().mean())

    for epoch in range(epochs):
        perm = torch.randperm(len(train_y), generator=order)
        for i in range(0, len(perm), 32):
            batch = perm[i : i + 32]
            opt.zero_grad()
            loss = loss_fn(model(train_x[batch]), train_y[batch])
            loss.backward()
            opt.step()
        trial.report(epoch + 1, accuracy(val_x, val_y))
    save = trial.options.get("save", "with-data")  # what final keeps for `taylorglo robustness`
    if trial.phase == "final" and save == "with-data":
        trial.save_model(model, inputs=test_x, targets=test_y)
    elif trial.phase == "final" and save == "module":
        trial.save_model(model)
    return {
        "fitness": accuracy(val_x, val_y),
        "fitness_name": "validation accuracy of the AdamW loop",
        "test_accuracy": accuracy(test_x, test_y),
        "epochs": epochs,
        "phase": trial.phase,
    }


def raises(loss_fn: nn.Module, trial) -> float:
    raise RuntimeError(f"the user's loop broke on seed {trial.seed}\nsecond line that is not shown")


def returns_nan(loss_fn: nn.Module, trial) -> float:
    return math.nan


def returns_text(loss_fn: nn.Module, trial) -> str:
    return "0.9"


def by_seed(loss_fn: nn.Module, trial) -> dict:
    """Fails in a way chosen by the seed, so one search shows every kind of failure beside
    successes: the search must record each and go on."""
    kind = trial.seed % 4
    if kind == 0:
        return raises(loss_fn, trial)
    if kind == 1:
        return returns_nan(loss_fn, trial)
    if kind == 2:
        return returns_text(loss_fn, trial)
    return {"fitness": 0.5, "fitness_name": "a constant"}
