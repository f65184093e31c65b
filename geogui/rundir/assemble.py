"""The columns of a whole read, assembled part by part (`ColumnBuilder`), rewinds applied."""

from __future__ import annotations

from typing import Any

import numpy as np

from geogui.engine.metrics import ModeChange, RecordKind, RunEvent
from geogui.engine.samples import AccuracyRecord
from geogui.rundir.columns import MATRIX_FIELDS, NO_WIDTHS, SCALAR_FIELDS, RunColumns
from geogui.rundir.lines import Part


class ColumnBuilder:
    """Growing output columns. Rows are copied in part by part, so that the parts never need to be
    held all at once; a rewind truncates (or, rarely, compacts) what is there."""

    def __init__(self) -> None:
        self.n = 0
        self.capacity = 0
        self.arrays: dict[str, np.ndarray | None] = {}
        self.modes: list[str] = []
        self._mode_index: dict[str, int] = {}
        self.evals: list[list] = []  # [row, step, loss, perplexity]
        self.accuracies: list[tuple[int, AccuracyRecord]] = []
        self.mode_changes: list[tuple[int, ModeChange]] = []
        self.events: list[tuple[int, RunEvent]] = []
        self.skipped = 0

    def reserve(self, rows: int) -> None:
        if rows <= self.capacity:
            return
        for name, array in list(self.arrays.items()):
            if array is not None:
                grown = np.empty((rows, *array.shape[1:]), dtype=array.dtype)
                grown[: self.n] = array[: self.n]
                self.arrays[name] = grown
        self.capacity = rows

    def _column(self, name: str, template: np.ndarray) -> np.ndarray:
        array = self.arrays.get(name)
        if array is None:  # a matrix whose width the first rows did not tell (standard-mode batches)
            array = np.full((self.capacity, *template.shape[1:]), np.nan, dtype=template.dtype)
            self.arrays[name] = array
        return array

    def add(self, part: Part) -> None:
        self.skipped += part.skipped
        codes = np.array([self._mode_index.setdefault(m, len(self._mode_index)) for m in part.modes] or [0],
                         dtype=np.int16)
        self.modes = list(self._mode_index)
        copied = 0
        for entry in part.entries:
            row, kind = int(entry[0]), entry[1]
            if kind == RecordKind.REWIND:
                self._copy(part, codes, copied, row)
                copied = row
                self._rewind(entry[2])
                continue
            at = self.n + row - copied
            if kind == RecordKind.EVAL:
                self.evals.append([at, *entry[2:]])
            elif kind == RecordKind.ACCURACY:
                self.accuracies.append((at, AccuracyRecord(*entry[2:])))
            elif kind == RecordKind.MODE_CHANGE:
                self.mode_changes.append((at, ModeChange(*entry[2:])))
            else:
                self.events.append((at, RunEvent(*entry[2:])))
        self._copy(part, codes, copied, part.rows)

    def _copy(self, part: Part, codes: np.ndarray, start: int, stop: int) -> None:
        count = stop - start
        if count <= 0:
            return
        if self.n + count > self.capacity:
            self.reserve(max(self.n + count, int(self.capacity * 1.5) + 1024))
        for name, source in part.arrays.items():
            if name in MATRIX_FIELDS and source.shape[1] == 0:
                if self.arrays.get(name) is not None:  # a batch without them, in a run with them
                    self.arrays[name][self.n:self.n + count] = np.nan
                continue
            target = self._column(name, source) if name in MATRIX_FIELDS else self.arrays.get(name)
            if target is None:
                target = self.arrays[name] = np.empty((self.capacity,), dtype=source.dtype if name != "mode"
                                                      else np.int16)
            block = source[start:stop]
            if name == "mode":
                block = codes[block]
            elif name in MATRIX_FIELDS and block.shape[1] != target.shape[1]:
                fitted = np.full((count, target.shape[1]), np.nan, dtype=np.float32)
                width = min(block.shape[1], target.shape[1])
                fitted[:, :width] = block[:, :width]
                block = fitted
            target[self.n:self.n + count] = block
        self.n += count

    def _rewind(self, k: Any) -> None:
        """Drop the batches, evaluations and mode changes so far whose step is past k (the events
        stay: they tell what happened to the run)."""
        self.evals = [e for e in self.evals if e[1] <= k]
        self.accuracies = [(row, accuracy) for row, accuracy in self.accuracies if accuracy.step <= k]
        self.mode_changes = [(row, change) for row, change in self.mode_changes if change.step <= k]
        if not self.n:
            return
        keep = self.arrays["step"][: self.n] <= k
        if keep.all():
            return
        kept = int(keep.sum())
        if not keep[kept:].any() and keep[:kept].all():
            new_rows = np.arange(self.n + 1).clip(max=kept)  # dropped a tail: rows after it clamp
        else:
            for name, array in self.arrays.items():
                if array is not None:
                    array[:kept] = array[: self.n][keep]
            new_rows = np.concatenate([[0], np.cumsum(keep)])
        self.n = kept
        self.evals = [[int(new_rows[min(e[0], len(new_rows) - 1)]), *e[1:]] for e in self.evals]
        self.mode_changes = [(int(new_rows[min(r, len(new_rows) - 1)]), c) for r, c in self.mode_changes]
        self.accuracies = [(int(new_rows[min(r, len(new_rows) - 1)]), a) for r, a in self.accuracies]
        self.events = [(int(new_rows[min(r, len(new_rows) - 1)]), e) for r, e in self.events]

    def result(self, widths: tuple[int, ...] | list[int] = NO_WIDTHS) -> RunColumns:
        n = self.n
        waste = self.capacity - n

        def take(array: np.ndarray) -> np.ndarray:
            view = array[:n]
            return view.copy() if waste > max(1024, n // 8) else view  # a view keeps the spare rows alive

        values: dict[str, Any] = {}
        for name in SCALAR_FIELDS:
            array = self.arrays.get(name)
            values[name] = take(array) if array is not None else np.zeros(0)
        values["mode"] = take(self.arrays["mode"]) if self.arrays.get("mode") is not None else np.zeros(0, np.int16)
        for name, width in zip(MATRIX_FIELDS, widths):
            array = self.arrays.get(name)
            values[name] = take(array) if array is not None else np.full((n, width), np.nan, dtype=np.float32)
        evals = np.array([e[1:] for e in self.evals], dtype=np.float64).reshape(-1, 3)
        return RunColumns(
            **values, modes=list(self.modes), eval_step=evals[:, 0].copy(), eval_loss=evals[:, 1].copy(),
            eval_perplexity=evals[:, 2].copy(), mode_changes=[c for _, c in self.mode_changes],
            events=[e for _, e in self.events], skipped_lines=self.skipped,
            eval_row=np.array([e[0] for e in self.evals], dtype=np.int64),
            mode_change_row=np.array([r for r, _ in self.mode_changes], dtype=np.int64),
            event_row=np.array([r for r, _ in self.events], dtype=np.int64),
            accuracies=[a for _, a in self.accuracies],
            accuracy_row=np.array([r for r, _ in self.accuracies], dtype=np.int64))


