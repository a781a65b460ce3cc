"""What an EPBT run found, read from its store: the lineage of a member, its loss-function and
hyperparameter *schedule*, the status numbers and the files ``start`` keeps up to date.

A member's schedule is its lineage read backwards: member ``i`` of generation ``g`` trained steps
``[start, stop)`` with its genes, starting from ``parent``'s network of generation ``g − 1``, and
so on back to generation 0. Replaying it (``final``) means training one network with those genes
over those steps, in order.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..experiment.store import Store
from ..polynomial import format_formula, loss_spec
from ..records import Candidate, Member

BEST_MODEL = "models/epbt-best.pt"


def lineage(store: Store, generation: int, index: int) -> list[tuple[Candidate, Member]]:
    """The chain of (result, member) rows that led to member ``index`` of ``generation``, oldest first."""
    candidates = {(c.generation, c.index): c for c in store.candidates() if c.generation <= generation}
    members = {(m.generation, m.index): m for m in store.members() if m.generation <= generation}
    chain = []
    g, i = generation, index
    while g >= 0 and (g, i) in members:
        m = members[(g, i)]
        chain.append((candidates[(g, i)], m))
        if m.parent is None:
            break
        g, i = g - 1, m.parent
    return chain[::-1]


def schedule_of(store: Store, generation: int, index: int) -> list[dict[str, Any]]:
    """The loss and hyperparameter schedule of a member: one entry per segment it inherited."""
    out = []
    for c, m in lineage(store, generation, index):
        out.append(
            {
                "generation": m.generation,
                "member": m.index,
                "start_step": m.start_step,
                "stop_step": m.stop_step,
                "params": c.params or None,
                "loss": loss_spec(c.params or None),
                "lr": m.lr,
                "weight_decay": m.weight_decay,
                "action": m.action,
                "parent": m.parent,
                "distill": m.distill,
                "val_accuracy": c.val_accuracy,
            }
        )
    return out


def best_member(store: Store) -> tuple[Candidate, Member] | None:
    """The fittest member of the newest complete generation (the population EPBT ends with)."""
    closed = [g.generation for g in store.generations() if g.closed]
    if not closed:
        return None
    rows = store.candidates(closed[-1])
    members = store.members(closed[-1])
    scored = [(c, m) for c, m in zip(rows, members) if c.status == "evaluated"]
    if not scored:
        return None
    return max(scored, key=lambda cm: (cm[0].fitness or 0.0, -cm[0].index))


def epbt_status(store: Store, config: Any) -> dict[str, Any]:
    """The EPBT-specific part of ``taylorglo status``."""
    meta = store.get_meta("epbt_plan") or {}
    members = store.members()
    best = best_member(store)
    info: dict[str, Any] = {
        "generations_total": meta.get("generations"),
        "ready_steps": meta.get("ready_steps"),
        "total_steps": meta.get("total_steps"),
        "exploits": sum(1 for m in members if m.action == "exploit"),
        "novelty_copies": sum(1 for m in members if m.action == "novelty"),
        "invariant_redraws": sum(m.redraws for m in members),
        "best": None,
    }
    if best is not None:
        c, m = best
        info["best"] = {
            "params": c.params or None,
            "fitness": c.fitness,
            "generation": c.generation,
            "index": c.index,
            "formula": format_formula(c.params) if c.params else "cross-entropy",
            "lr": m.lr,
            "weight_decay": m.weight_decay,
            "test_accuracy": (c.metrics or {}).get("test_accuracy"),
            "schedule_length": len(lineage(store, c.generation, c.index)),
        }
    return info


def members_csv(members: Sequence[Member], results: dict[tuple[int, int], Candidate]) -> str:
    """Every member of every generation: lineage, genes, result (``members.csv``)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "generation",
            "index",
            "parent",
            "action",
            "status",
            "fitness",
            "val_accuracy",
            "test_accuracy",
            "lr",
            "weight_decay",
            "start_step",
            "stop_step",
            "distill",
            "redraws",
            "wall_time",
            "worker",
            "reason",
            "params",
        ]
    )
    for m in members:
        c = results[(m.generation, m.index)]
        writer.writerow(
            [
                m.generation,
                m.index,
                m.parent,
                m.action,
                c.status,
                c.fitness,
                c.val_accuracy,
                (c.metrics or {}).get("test_accuracy"),
                m.lr,
                m.weight_decay,
                m.start_step,
                m.stop_step,
                int(m.distill),
                m.redraws,
                c.wall_time,
                c.worker,
                c.reason,
                " ".join(repr(p) for p in c.params),
            ]
        )
    return out.getvalue()


def generations_csv(members: Sequence[Member], results: dict[tuple[int, int], Candidate]) -> str:
    """Per generation: its steps, fitness statistics (of recorded members), counts, exploit and
    novelty copies, invariant redraws (``generations.csv``; an open generation has pending ones)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "generation",
            "start_step",
            "stop_step",
            "best_fitness",
            "mean_fitness",
            "min_fitness",
            "trained",
            "failed",
            "pending",
            "exploits",
            "novelty_copies",
            "invariant_redraws",
        ]
    )
    for g in sorted({m.generation for m in members}):
        ms = [m for m in members if m.generation == g]
        rs = [results[(g, m.index)] for m in ms]
        scores = [r.fitness or 0.0 for r in rs if r.status != "pending"]
        writer.writerow(
            [
                g,
                ms[0].start_step,
                ms[0].stop_step,
                max(scores, default=None),
                sum(scores) / len(scores) if scores else None,
                min(scores, default=None),
                sum(r.status == "evaluated" for r in rs),
                sum(r.status == "failed" for r in rs),
                sum(r.status == "pending" for r in rs),
                sum(m.action == "exploit" for m in ms),
                sum(m.action == "novelty" for m in ms),
                sum(m.redraws for m in ms),
            ]
        )
    return out.getvalue()


def export_epbt(directory: Path, store: Store, config: Any, final: bool = False) -> None:
    """Rewrite best.json (best member and its schedule), members.csv and generations.csv."""
    best = best_member(store)
    if best is not None:
        c, m = best
        write_atomic(
            directory / "best.json",
            json.dumps(
                {
                    "name": config.name,
                    "kind": "epbt",
                    "generation": c.generation,
                    "index": c.index,
                    "fitness": c.fitness,
                    "test_accuracy": (c.metrics or {}).get("test_accuracy"),
                    "checkpoint": m.checkpoint,
                    "final": final,
                    "schedule": schedule_of(store, c.generation, c.index),
                },
                indent=2,
            )
            + "\n",
        )
    members = store.members()
    results = {(c.generation, c.index): c for c in store.candidates()}
    write_atomic(directory / "generations.csv", generations_csv(members, results))
    write_atomic(directory / "members.csv", members_csv(members, results))


def save_best_network(directory: Path, store: Store, config: Any, data: Any) -> Path | None:
    """Write the final best member's network to ``DIR/models/epbt-best.pt`` (the format
    ``taylorglo robustness`` and :func:`~taylorglo.training.checkpoint.load_network` read)."""
    from ..training.checkpoint import load_state, save_network
    from ..training.trainer import build_network

    best = best_member(store)
    if best is None:
        return None
    c, m = best
    state = load_state(directory / m.checkpoint)
    model = build_network(config.training, data)
    model.load_state_dict(state["model"])
    return save_network(
        model,
        directory / BEST_MODEL,
        model_name=config.training.model,
        model_options=config.training.model_options,
        data=data,
        loss=loss_spec(c.params or None),
        generation=c.generation,
        index=c.index,
        test_accuracy=(c.metrics or {}).get("test_accuracy"),
    )
