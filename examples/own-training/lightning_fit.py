"""Your own training as the fitness, written for PyTorch Lightning: a LightningModule whose
``training_step`` calls the candidate loss, on the same breast-cancer table as ``fit.py``.
Lightning is an optional extra (``pip install -e ".[lightning]"``); taylorglo itself never imports
it. Run from this folder: ``PYTHONPATH=. taylorglo init runs/lightning lightning.toml``, then
``PYTHONPATH=. taylorglo start runs/lightning``."""

from __future__ import annotations

import logging

import lightning as L
import torch
from fit import table
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

# Lightning announces its accelerator choice on every Trainer; a search makes hundreds of them.
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


class Classifier(L.LightningModule):
    """A small MLP trained with whatever loss it is given (the candidate's, or cross-entropy)."""

    def __init__(self, loss_fn: nn.Module, lr: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 2))
        self.loss_fn, self.lr = loss_fn, lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return self.loss_fn(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self(x).argmax(1) == y).float().mean())

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_acc", (self(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=1e-2)


class ReportToTaylorGLO(L.Callback):
    """Hands each epoch's validation accuracy to ``trial.report``, which aborts a hopeless
    candidate under the config's abort_at / abort_below rule (its exception stops the Trainer)."""

    def __init__(self, trial) -> None:
        self.trial = trial

    def on_validation_epoch_end(self, trainer, module) -> None:
        if not trainer.sanity_checking:
            self.trial.report(trainer.current_epoch + 1, float(trainer.callback_metrics["val_acc"]))


def objective(loss_fn: nn.Module, trial) -> dict:
    train_x, train_y, val_x, val_y, test_x, test_y = table()
    L.seed_everything(trial.seed, verbose=False)  # the seed taylorglo gives: what makes resume exact
    torch.set_num_threads(trial.threads)  # Lightning would not change it; said here to be plain
    order = torch.Generator().manual_seed(trial.seed)
    train = DataLoader(TensorDataset(train_x, train_y), batch_size=32, shuffle=True, generator=order)
    val = DataLoader(TensorDataset(val_x, val_y), batch_size=len(val_y))
    test = DataLoader(TensorDataset(test_x, test_y), batch_size=len(test_y))
    model = Classifier(loss_fn, trial.options.get("lr", 3e-3))
    trainer = L.Trainer(
        max_epochs=max(1, round(trial.options["epochs"] * trial.budget)),  # a search trains a share
        accelerator="gpu" if trial.device.type == "cuda" else "cpu",
        devices=1,
        deterministic=True,
        callbacks=[ReportToTaylorGLO(trial)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, train, val)
    val_acc = float(trainer.validate(model, val, verbose=False)[0]["val_acc"])
    test_acc = float(trainer.test(model, test, verbose=False)[0]["test_acc"])
    if trial.phase == "final":  # kept for `taylorglo robustness`, with the split to attack
        trial.save_model(model.net, inputs=test_x, targets=test_y)
    return {"fitness": val_acc, "fitness_name": "validation accuracy (Lightning)", "test_accuracy": test_acc}
