"""How many of the reference's published experiment configs taylorglo runs (issue 20).

Point it at a checkout of the reference's ``experiments/`` folder (``cognizant-ai-labs/TaylorGLO``;
its license allows academic use only, so taylorglo ships none of its files):

    python benchmarks/reference_configs.py PATH/TO/TaylorGLO/experiments
    python benchmarks/reference_configs.py PATH --train-steps 3   # and train each a few steps
    python benchmarks/reference_configs.py PATH --list            # every file's verdict

Every ``*.json`` under PATH is read as ``taylorglo init`` reads it: translated field by field,
then validated as a taylorglo config (its network built). With ``--train-steps``, each config that
imports also trains that many steps, with its own model, loss and augmentation (in batches of 16),
on random data of its dataset's shape (no dataset files needed). Printed: how many import, of the searches and of
the one-shot configs, and for every other one the fields that stopped it, most common first.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path
from typing import Any

from taylorglo.errors import TaylorGLOError
from taylorglo.experiment.config import ExperimentConfig
from taylorglo.reference.translate import is_reference_config, read_reference_json, translate

#: The shape of each dataset a translated config can name: (channels, height, width), and its classes.
SHAPES = {"mnist": ((1, 28, 28), 10), "cifar10": ((3, 32, 32), 10), "cifar100": ((3, 32, 32), 100),
          "svhn": ((3, 32, 32), 10)}  # fmt: skip


def synthetic(dataset: str, n: int = 64) -> Any:
    """Random images of ``dataset``'s shape and classes, as the loader would hold them."""
    import torch

    from taylorglo.training.data import DataSplits

    shape, classes = SHAPES[dataset]
    g = torch.Generator().manual_seed(0)

    def split(size: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randint(0, 256, (size, *shape), generator=g, dtype=torch.uint8), torch.arange(size) % classes

    (tx, ty), (vx, vy), (sx, sy) = split(n), split(n // 2), split(n // 2)
    c = shape[0]
    augment = "crop-flip" if c == 3 else "none"
    return DataSplits(dataset, tx, ty, vx, vy, sx, sy, classes, (0.5,) * c, (0.25,) * c, augment)


def train_a_few_steps(config: ExperimentConfig, steps: int) -> str:
    """Train the config's own job (a candidate's or a one-shot run's network, loss and batch)
    ``steps`` steps on synthetic data; the result's status."""
    from taylorglo.training.trainer import train

    # Batches of 16 whatever the config's: the point is that the network, loss and augmentation
    # run, and DenseNet-BC-250's activations at 128 images of 32x32 outgrow a small machine's memory.
    training = config.candidate_training().replace(
        steps=steps, epochs=None, lr_decay=[], abort_at=None, partial_fraction=1.0, eval_test=False, batch_size=16
    )
    losses = getattr(config.settings, "losses", None)
    loss = losses[0].spec if losses else "cross-entropy"
    result = train(training, loss, seed=0, data=synthetic(training.dataset))
    return result.status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "path", help="A checkout of the reference's experiments/ folder (or any folder of its configs)."
    )
    parser.add_argument("--train-steps", type=int, default=0, help="Also train each imported config this many steps.")
    parser.add_argument("--list", action="store_true", help="Print every file's verdict.")
    args = parser.parse_args()
    files = sorted(Path(args.path).rglob("*.json"))
    if not files:
        raise SystemExit(f"{args.path}: no .json files")
    imported: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    trained: collections.Counter[str] = collections.Counter()
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            data = read_reference_json(text)
        except ValueError as exc:
            total["unreadable"] += 1
            reasons[f"not JSON: {exc}"] += 1
            continue
        if not is_reference_config(data):
            continue
        kind = str(data.get("kind"))
        total[kind] += 1
        translation = translate(data, path.name)
        why = [line.split(": ", 1)[0] + ": " + line.split(": ", 1)[1] for line in translation.refused]
        verdict = "imports"
        if not why:
            try:
                config = ExperimentConfig.from_dict(translation.config, default_name=path.stem)
            except TaylorGLOError as exc:
                why = [f"invalid after translation: {exc}"]
            else:
                imported[kind] += 1
                if args.train_steps:
                    status = train_a_few_steps(config, args.train_steps)
                    trained[status] += 1
                    verdict += f", trains ({status})"
        for line in why:
            reasons[line] += 1
        if args.list:
            print(f"{path.relative_to(args.path)}: {verdict if not why else '; '.join(why)}")
    searches, oneshots = total["generational"], total["oneShot"]
    count = imported["generational"] + imported["oneShot"]
    print(
        f"{count} of {searches + oneshots} configs import: {imported['generational']} of {searches} searches, "
        f"{imported['oneShot']} of {oneshots} one-shot configs"
        + (f"; {total['unreadable']} files unreadable" if total["unreadable"] else "")
    )
    if args.train_steps:
        print(f"trained {args.train_steps} steps each on synthetic data: {dict(trained)}")
    print("why the others do not (a config can have several reasons):")
    for line, n in reasons.most_common():
        print(f"  {n:4d}  {line}")


if __name__ == "__main__":
    main()
