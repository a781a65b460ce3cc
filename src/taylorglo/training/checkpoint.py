"""Trained networks on disk: saved by ``taylorglo final``, loaded by ``taylorglo robustness``.

A file holds the weights *and* what is needed to rebuild the network without the experiment's
config (model name and options, input shape, classes, normalisation, the loss it was trained
with), so a saved network stays usable when the config that made it is long gone. Writes are
atomic: a crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..atomic import atomic_file
from ..errors import TaylorGLOError, one_line
from .data import DataSplits
from .models import build_model, input_layer

FORMAT = "taylorglo-network-1"


def save_network(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    model_name: str,
    model_options: dict[str, Any],
    data: DataSplits,
    loss: str,
    **meta: Any,
) -> Path:
    """Write ``model`` (``Sequential(Normalize, net)`` as :func:`~.trainer.train` builds it) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "model": model_name,
        "model_options": dict(model_options),
        "input_shape": list(data.input_shape),
        "num_classes": data.num_classes,
        "mean": list(data.mean),
        "std": list(data.std),
        "inputs": data.inputs,
        "vocab_size": data.vocab_size,
        "loss": loss,
        "meta": meta,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_file(path) as fh:
        torch.save(payload, fh)
    return path


def load_network(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The saved network (in eval mode, on ``device``) and its description (everything but weights;
    for a user objective's module, also the ``inputs`` / ``targets`` / ``input_range`` it saved)."""
    path = Path(path)
    if not path.is_file():
        raise TaylorGLOError(
            f"model: {str(path)!r} does not exist; run `taylorglo final DIR` to train and save networks"
        )
    payload = _load(path, "model", "network")
    if isinstance(payload, dict) and payload.get("format") == MODULE_FORMAT:
        model = _load_module(path, payload)
        model.to(device).eval()
        return model, {k: v for k, v in payload.items() if k != "module"}
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise TaylorGLOError(f"model: {str(path)!r} is not a network saved by taylorglo")
    try:
        inputs = payload.get("inputs", "images")  # files from before 0.2 hold images
        net = build_model(
            payload["model"],
            tuple(payload["input_shape"]),
            payload["num_classes"],
            vocab_size=payload.get("vocab_size"),
            **payload["model_options"],
        )
        model = nn.Sequential(input_layer(inputs, payload["mean"], payload["std"]), net)
        model.load_state_dict(payload["state_dict"])
    except TaylorGLOError:
        raise
    except Exception as exc:  # a file that loads but does not hold what it says
        raise TaylorGLOError(
            f"model: {str(path)!r} is damaged ({type(exc).__name__}: {one_line(exc)}); "
            "restore it from a backup or leave its loss out"
        ) from None
    model.to(device).eval()
    info = {k: v for k, v in payload.items() if k != "state_dict"}
    return model, info


MODULE_FORMAT = "taylorglo-module-1"


def save_module(
    module: nn.Module,
    path: str | os.PathLike[str],
    *,
    num_classes: int,
    loss: str,
    attack_data: dict[str, Any] | None,
    **meta: Any,
) -> Path:
    """Write a user objective's trained ``module`` (pickled whole: taylorglo cannot rebuild a
    network it did not build) with the test split ``robustness`` attacks it on, when given.

    The module's pickle is kept as bytes inside a weights-only file, so opening the file (status,
    robustness's listing) never runs code; only :func:`load_network` unpickles it, which imports
    the module's class the way the objective itself was imported."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pickled = io.BytesIO()
    module_cpu = copy.deepcopy(module).cpu()
    torch.save(module_cpu, pickled)
    payload = {
        "format": MODULE_FORMAT,
        "module_class": f"{type(module).__module__}.{type(module).__qualname__}",
        "num_classes": int(num_classes),
        "loss": loss,
        "meta": meta,
        "module": pickled.getvalue(),
        **(attack_data or {}),
    }
    with atomic_file(path) as fh:
        torch.save(payload, fh)
    return path


def _load_module(path: Path, payload: dict[str, Any]) -> nn.Module:
    """The user's module inside a :data:`MODULE_FORMAT` file; one line when its class cannot be
    imported here."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            module = torch.load(io.BytesIO(payload["module"]), map_location="cpu", weights_only=False)
    except (ImportError, AttributeError) as exc:
        raise TaylorGLOError(
            f"model: {str(path)!r} holds a {payload.get('module_class')} that cannot be imported here "
            f"({type(exc).__name__}: {one_line(exc)}); run this where the objective's module is importable "
            "(PYTHONPATH as for the experiment)"
        ) from None
    except Exception as exc:
        raise TaylorGLOError(
            f"model: {str(path)!r} is damaged ({type(exc).__name__}: {one_line(exc)}); "
            "restore it from a backup or leave its loss out"
        ) from None
    if not isinstance(module, nn.Module):
        raise TaylorGLOError(f"model: {str(path)!r} does not hold a torch.nn.Module")
    return module


STATE_FORMAT = "taylorglo-train-state-1"


def save_state(state: dict[str, Any], path: str | os.PathLike[str], **meta: Any) -> Path:
    """Write a run's continuation state (:attr:`TrainResult.state`: step, weights, optimiser) to
    ``path`` atomically, with ``meta`` (genes, lineage) beside it for people who open the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as fh:
        torch.save({"format": STATE_FORMAT, "meta": meta, **state}, fh)
    return path


def load_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The state :func:`save_state` wrote; a missing or foreign file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise TaylorGLOError(
            f"checkpoint: {str(path)!r} does not exist (was the experiment directory moved or pruned by hand?)"
        )
    payload = _load(path, "checkpoint", "training state")
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        raise TaylorGLOError(f"checkpoint: {str(path)!r} is not a training state saved by taylorglo")
    return payload


def _load(path: Path, field: str, what: str) -> Any:
    """``torch.load`` with weights only (a saved file never runs code), any failure one line."""
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of foreign files
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, overwritten, or a pickle that is more than weights
        raise TaylorGLOError(
            f"{field}: {str(path)!r} cannot be read as a {what} saved by taylorglo "
            f"({type(exc).__name__}: {one_line(exc)}); it is damaged or foreign: restore it "
            "from a backup"
        ) from None
