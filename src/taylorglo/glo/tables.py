"""The search's candidates as one CSV, written the same way by the host (after every result) and
by the report: one writer, so the two files can never disagree."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Sequence
from typing import Any

from ..records import Candidate

#: Columns of candidates.csv: every field of a store row except ``metrics`` (the training log,
#: which has no tabular form), in the store's own order; a user objective's own numbers follow.
CANDIDATE_COLUMNS = tuple(f.name for f in dataclasses.fields(Candidate) if f.name != "metrics")
#: Where a candidate's metrics list the names of what a user objective returned beside its fitness.
OBJECTIVE_METRICS_KEY = "objective_metrics"


def objective_columns(candidates: Sequence[Candidate]) -> list[str]:
    """The names a user objective returned beside its fitness, in the order first seen."""
    seen: dict[str, None] = {}
    for c in candidates:
        for name in (c.metrics or {}).get(OBJECTIVE_METRICS_KEY, ()):
            if name not in CANDIDATE_COLUMNS:
                seen.setdefault(str(name), None)
    return list(seen)


def candidates_csv(candidates: Sequence[Candidate]) -> str:
    """Every candidate row (all store columns but metrics, then the objective's own numbers);
    None is an empty cell, floats are exact, parameters are space-separated ``repr`` floats."""
    extra = objective_columns(candidates)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CANDIDATE_COLUMNS, *extra])
    for c in candidates:
        row = c.to_dict()
        row["params"] = " ".join(repr(float(p)) for p in c.params)
        metrics = c.metrics or {}
        writer.writerow([row[k] for k in CANDIDATE_COLUMNS] + [_cell(metrics.get(k)) for k in extra])
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A metric as one CSV cell: lists and dicts as JSON."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value
