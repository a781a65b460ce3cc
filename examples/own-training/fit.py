"""Your own training as the fitness: a plain PyTorch loop with AdamW on a tabular task
(scikit-learn's bundled breast-cancer table, 30 features, 2 classes). taylorglo calls
``objective(loss_fn, trial)`` once per candidate and per final repeat; nothing here is taylorglo's
trainer. Run from this folder: ``taylorglo init runs/own search.toml && taylorglo start runs/own``
(the workers import ``fit`` from the current directory: ``PYTHONPATH=.``)."""

from __future__ import annotations

from functools import cache

import torch
from torch import nn


@cache
def table() -> tuple[torch.Tensor, ...]:
    """Standardised features; a fixed 60/20/20 split (the same for every candidate)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    x = torch.tensor(data.data, dtype=torch.float32)
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(42))
    x, y = x[order], y[order]
    a, b = int(0.6 * len(y)), int(0.8 * len(y))
    x = (x - x[:a].mean(0)) / x[:a].std(0)
    return x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:]


def objective(loss_fn: nn.Module, trial) -> dict:
    train_x, train_y, val_x, val_y, test_x, test_y = table()
    torch.manual_seed(trial.seed)  # the seed taylorglo gives: what makes resume exact
    model = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 2)).to(trial.device)
    opt = torch.optim.AdamW(model.parameters(), lr=trial.options.get("lr", 3e-3), weight_decay=1e-2)
    epochs = max(1, round(trial.options["epochs"] * trial.budget))  # a search trains a share of it
    shuffle = torch.Generator().manual_seed(trial.seed)

    def accuracy(x: torch.Tensor, y: torch.Tensor) -> float:
        with torch.no_grad():
            return float((model(x).argmax(1) == y).float().mean())

    for epoch in range(epochs):
        for batch in torch.randperm(len(train_y), generator=shuffle).split(32):
            opt.zero_grad()
            loss_fn(model(train_x[batch]), train_y[batch]).backward()
            opt.step()
        trial.report(epoch + 1, accuracy(val_x, val_y))  # lets abort_at / abort_below stop a bad one
    if trial.phase == "final":  # kept for `taylorglo robustness`, with the split to attack
        trial.save_model(model, inputs=test_x, targets=test_y)
    return {
        "fitness": accuracy(val_x, val_y),
        "fitness_name": "validation accuracy (AdamW loop)",  # what status and the report call it
        "test_accuracy": accuracy(test_x, test_y),  # every other number: a candidates.csv column
    }
