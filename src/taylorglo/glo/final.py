"""What ``taylorglo final`` trains for a TaylorGLO search: cross-entropy and the best candidate
(``--generation-best``: the best of every generation; ``--params``: a given loss), each from
scratch or (``--from-pretrained``) continuing the candidate's own partial run; trained by the
one final loop (:mod:`taylorglo.experiment.final`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import TaylorGLOError
from ..evaluators.recipes import ContinuedRun
from ..experiment.contenders import Contender, FinalOptions, baseline, params_label
from ..experiment.store import Store
from ..polynomial import DEFAULT_INPUTS, check_inputs, check_params
from ..records import Candidate


def candidate_label(generation: int, index: int) -> str:
    return f"candidate-{generation}:{index}"


def search_contenders(store: Store, directory: Path, config: Any, options: FinalOptions) -> tuple[list[Contender], str]:
    """Cross-entropy and the chosen losses (see the module docstring)."""
    inputs = check_inputs(config.training.loss_inputs)
    choices = choose_losses(store, directory, options.generation_best, options.params, inputs)
    if options.from_pretrained:
        if options.params is not None:
            raise TaylorGLOError(
                "--from-pretrained: only search candidates have a partial run to continue; "
                "drop --params or --from-pretrained"
            )
        if config.training.objective is not None:
            raise TaylorGLOError(
                "--from-pretrained: continuing a candidate's partial run needs the built-in trainer; "
                "training.objective trains from scratch: drop --from-pretrained"
            )
        choices = _pretrained(store, config, choices)
    contenders = [baseline(), *choices]
    return contenders, f"{len(contenders)} losses"


def choose_losses(
    store: Store,
    directory: Path,
    generation_best: bool = False,
    params: Sequence[float] | None = None,
    inputs: tuple[str, ...] = DEFAULT_INPUTS,
) -> list[Contender]:
    """What ``final`` evaluates besides cross-entropy (``--params`` a polynomial of ``inputs``)."""
    if params is not None:
        values, _ = check_params(params, None, inputs)
        return [Contender(params_label(values), values, "given with --params")]
    candidates = [c for c in store.candidates() if c.status == "evaluated"]
    if not candidates:
        raise TaylorGLOError(
            f"DIR: {str(directory)!r} has no evaluated candidate yet; run `taylorglo start {directory}` "
            "first, or give a loss with --params"
        )
    if not generation_best:
        best = store.best()
        assert best is not None
        return [_choice(best, "best of the search")]
    by_generation: dict[int, Candidate] = {}
    for c in candidates:  # in (generation, index) order, so ties go to the earliest
        current = by_generation.get(c.generation)
        if current is None or (c.fitness or 0.0) > (current.fitness or 0.0):
            by_generation[c.generation] = c
    return [_choice(c, f"best of generation {g}") for g, c in sorted(by_generation.items())]


def _choice(c: Candidate, source: str) -> Contender:
    return Contender(candidate_label(c.generation, c.index), list(c.params), source, c.generation, c.index)


def _pretrained(store: Store, config: Any, choices: list[Contender]) -> list[Contender]:
    """Each choice continuing its candidate's partial run: the run replayed from the seed of the
    attempt that produced the recorded result (retries after an abort reseed) for the search's
    partial schedule, then trained on under the repeat's seed."""
    out = []
    for choice in choices:
        (c,) = [c for c in store.candidates(choice.generation) if c.index == choice.index]
        out.append(
            Contender(
                choice.label + "+pretrained",
                choice.params,
                choice.source + ", continued from its partial run",
                choice.generation,
                choice.index,
                pretrained=True,
                recipe=ContinuedRun(
                    None if choice.params is None else tuple(choice.params),
                    int((c.metrics or {}).get("seed", c.seed)),
                    config.search.partial_fraction,
                ),
            )
        )
    return out
