"""taylorglo's SGD against torch.optim.SGD: the same networks, bit for bit, and interchangeable state."""

import copy
import subprocess
import sys

import pytest
import torch
from torch import nn

from taylorglo.training.sgd import SGD

SETTINGS = [
    {"lr": 0.1},
    {"lr": 0.05, "momentum": 0.9},
    {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
    {"lr": 0.02, "momentum": 0.9, "weight_decay": 1e-3, "nesterov": True},
    {"lr": 0.02, "momentum": 0.5, "dampening": 0.1, "weight_decay": 1e-2},
]


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


def _steps(model: nn.Module, optimizer, n: int, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x, y = torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


@pytest.mark.parametrize("settings", SETTINGS)
def test_trains_bit_for_bit_as_torch_sgd(settings):
    ours, theirs = _net(), _net()
    _steps(ours, SGD(ours.parameters(), **settings), 25)
    _steps(theirs, torch.optim.SGD(theirs.parameters(), **settings), 25)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("settings", SETTINGS[1:4])
def test_state_dicts_are_interchangeable(settings):
    """A checkpoint written with torch.optim.SGD (as earlier versions did) continues here exactly
    as it would have there, and the other way round."""
    start = _net()
    torch_opt = torch.optim.SGD(start.parameters(), **settings)
    _steps(start, torch_opt, 5)
    saved_model, saved_torch = copy.deepcopy(start.state_dict()), copy.deepcopy(torch_opt.state_dict())

    ours = _net()
    ours.load_state_dict(saved_model)
    ours_opt = SGD(ours.parameters(), **settings)
    ours_opt.load_state_dict(copy.deepcopy(saved_torch))
    _steps(ours, ours_opt, 10, seed=2)
    _steps(start, torch_opt, 10, seed=2)
    for a, b in zip(ours.parameters(), start.parameters()):
        assert torch.equal(a, b)

    ours_state = ours_opt.state_dict()
    assert ours_state["param_groups"][0]["params"] == torch_opt.state_dict()["param_groups"][0]["params"]
    back = torch.optim.SGD(_net().parameters(), **settings)
    back.load_state_dict(copy.deepcopy(ours_state))
    for position, values in torch_opt.state_dict()["state"].items():
        assert torch.equal(back.state_dict()["state"][position]["momentum_buffer"], values["momentum_buffer"])


def test_nesterov_without_momentum_is_refused():
    with pytest.raises(ValueError, match="Nesterov"):
        SGD(_net().parameters(), lr=0.1, nesterov=True)


def test_a_training_imports_no_compiler():
    """The reason this optimizer exists: a worker's training never imports torch._dynamo."""
    code = (
        "import sys\nfrom taylorglo.training import TrainConfig, train\n"
        "from taylorglo.training.data import load_dataset\n"
        "train(TrainConfig(dataset='digits', model='mlp', steps=20, momentum=0.9, weight_decay=1e-4), None,"
        " seed=0, data=load_dataset('digits'))\n"
        "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
