"""The terms the loss adds up, as the Loss terms tab plots them: which there are, and in which modes
each is computed. Numpy only.

Every batch record holds all five terms (see geogui.engine.modes), but a mode that does not compute
a term logs 0 for it: the orthogonality outside geometric is not "presentations perfectly apart",
it is not measured, and the load balance in geometric is not "perfectly balanced", routing is
forced there. `computed_only` turns those zeros into NaN, so a plot leaves a gap where a flat line
at 0 would read as a value. A term the mode computes keeps its value, 0 included (a weight of 0).
A mode this version does not know keeps every value: it is not known what it leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from geogui.settings import Mode

_STANDARD, _FAST, _GEOMETRIC = Mode.STANDARD.value, Mode.GEOMETRIC_FAST.value, Mode.GEOMETRIC.value


@dataclass(frozen=True)
class LossTerm:
    field: str  # the BatchRecord and RunColumns field
    name: str  # the curve's name: legend, readout and exported data
    not_computed_in: frozenset[str] = frozenset()  # modes that log 0 for it without computing it


LOSS_TERMS: tuple[LossTerm, ...] = (
    LossTerm("task_loss", "task"),
    LossTerm("aux_loss", "load balance", frozenset({_GEOMETRIC})),
    LossTerm("penalty", "rotation penalty", frozenset({_STANDARD})),
    LossTerm("orthogonality", "orthogonality", frozenset({_STANDARD, _FAST})),
    LossTerm("specialization", "specialization", frozenset({_STANDARD, _FAST})),
)
TERM_FIELDS = tuple(term.field for term in LOSS_TERMS)


def terms_of_records(batches: Sequence) -> np.ndarray:
    """(N, 5): each BatchRecord's terms, in LOSS_TERMS order."""
    return np.array([[getattr(batch, name) for name in TERM_FIELDS] for batch in batches],
                    dtype=np.float64).reshape(len(batches), len(TERM_FIELDS))


def terms_of_columns(columns, start: int, stop: int) -> np.ndarray:
    """(stop - start, 5): rows start … stop - 1 of a RunColumns' terms, in LOSS_TERMS order."""
    return np.column_stack([np.asarray(getattr(columns, name)[start:stop], dtype=np.float64)
                            for name in TERM_FIELDS]).reshape(-1, len(TERM_FIELDS))


def computed_only(terms: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """A copy of the (N, 5) `terms` with NaN where the row's mode (`modes[i]`) does not compute the term."""
    out = np.array(terms, dtype=np.float64).reshape(-1, len(LOSS_TERMS))
    if not len(out):
        return out
    of_row = np.asarray(modes, dtype=object)
    for mode in dict.fromkeys(of_row.tolist()):  # a chunk of batches has one or two modes
        absent = [i for i, term in enumerate(LOSS_TERMS) if mode in term.not_computed_in]
        if absent:
            out[np.ix_(of_row == mode, absent)] = np.nan
    return out

