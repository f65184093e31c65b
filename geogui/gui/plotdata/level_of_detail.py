"""Columns that keep every extreme of a run of any length in bounded memory. Numpy only.

Up to `capacity` rows a column holds every batch's value. Past it, all the columns of a store are
coarsened together into bins of `bin_size` consecutive batches (4, then 8, 16, ...), each bin
stored as two rows:
- a value column keeps the bin's maximum, then its minimum (NaN-ignoring: a spike next to a NaN
  survives; a bin of NaNs stays NaN);
- an x column (step, seconds, tokens) keeps the bin's first x, then its last, so the rows stay in
  order and searchsorted/interp work unchanged.
That is the same (max, min) pair per interval that `peak_reduce` draws for a pixel column, so a
plot of the coarsened rows shows every spike the raw rows had, at any zoom, while the store never
holds more than `capacity` rows (and new batches cost O(1) each). The last bin fills as batches
arrive; its two rows are updated in place until it is complete.

Exact values are not kept past `capacity` batches: the run's metrics.jsonl on disk has them.
"""

from __future__ import annotations

import numpy as np

from geogui.gui.plotdata.growable import GrowableArray

DEFAULT_CAPACITY = 1 << 15  # rows per column before the store coarsens: 32,768 batches at full detail
FIRST_BIN = 4  # raw rows -> bins of 4 batches (two rows each): the first coarsening halves the rows


class LevelOfDetail:
    """Aligned columns (one row per batch, or two per bin) coarsened together past `capacity` rows."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 2 * FIRST_BIN:
            raise ValueError(f"capacity must be at least {2 * FIRST_BIN} rows, got {capacity}")
        self.capacity = capacity
        self.bin_size = 1  # batches per bin (1: every batch is a row of its own)
        self._partial = 0  # batches in the last bin while it is not complete (0: it is complete)
        self._columns: list[tuple[GrowableArray, bool]] = []

    def column(self, *, x: bool = False, width: int | None = None, dtype: type = np.float64) -> GrowableArray:
        """A new column of this store (before any row is added to the store)."""
        if self.rows:
            raise RuntimeError("columns must be added before the first row")
        column = GrowableArray(width=width, dtype=dtype)
        self._columns.append((column, x))
        return column

    def late_column(self, width: int | None = None, dtype: type = np.float64) -> GrowableArray:
        """A value column added once rows may exist (its width told only by a later batch): NaN in
        the rows already held, which measured nothing of it, then filled like the others."""
        column = GrowableArray(width=width, dtype=dtype)
        column.extend(np.full((self.rows, *column.row_shape), np.nan, dtype=dtype))
        self._columns.append((column, False))
        return column

    def add_column(self, column: GrowableArray, x: bool = False) -> None:
        if self.rows:
            raise RuntimeError("columns must be added before the first row")
        self._columns.append((column, x))

    @property
    def rows(self) -> int:
        return len(self._columns[0][0]) if self._columns else 0

    @property
    def batches(self) -> int:
        """Batches the rows stand for."""
        if self.bin_size == 1:
            return self.rows
        bins = self.rows // 2
        return (bins - 1) * self.bin_size + (self._partial or self.bin_size) if bins else 0

    def nbytes(self) -> int:
        """Bytes held by the columns' buffers (their spare capacity included)."""
        return sum(column.nbytes() for column, _ in self._columns)

    def extend(self, values: list[np.ndarray]) -> None:
        """New batches: one array per column, in the order the columns were added, all of one length."""
        if len(values) != len(self._columns):
            raise ValueError(f"{len(values)} arrays for {len(self._columns)} columns")
        arrays = [np.asarray(v, dtype=c.dtype).reshape(-1, *c.row_shape) for v, (c, _) in zip(values, self._columns)]
        count = len(arrays[0]) if arrays else 0
        if any(len(a) != count for a in arrays):
            raise ValueError("every column needs the same number of new rows")
        if not count:
            return
        if self.bin_size == 1:
            for (column, _), new in zip(self._columns, arrays):
                column.extend(new)
        else:
            self._extend_binned(arrays)
        while self.rows > self.capacity:
            self._coarsen()

    # ---- binned rows ----
    def _extend_binned(self, arrays: list[np.ndarray]) -> None:
        size, start, count = self.bin_size, 0, len(arrays[0])
        if self._partial:  # fill the last bin first
            take = min(size - self._partial, count)
            for (column, is_x), new in zip(self._columns, arrays):
                rows = column.view()
                part = new[:take]
                if is_x:
                    rows[-1] = part[-1]
                else:
                    rows[-2] = np.fmax(rows[-2], np.fmax.reduce(part, axis=0))
                    rows[-1] = np.fmin(rows[-1], np.fmin.reduce(part, axis=0))
            self._partial = (self._partial + take) % size
            start = take
        complete = (count - start) // size
        rest = count - start - complete * size
        for (column, is_x), new in zip(self._columns, arrays):
            if complete:
                column.extend(_bins(new[start:start + complete * size], size, is_x))
            if rest:
                column.extend(_bins(new[count - rest:], rest, is_x))
        if rest:
            self._partial = rest

    def _coarsen(self) -> None:
        if self.bin_size == 1:
            rows = self.rows
            complete, rest = divmod(rows, FIRST_BIN)
            for column, is_x in self._columns:
                data = column.view().copy()
                column.clear()
                if complete:
                    column.extend(_bins(data[:complete * FIRST_BIN], FIRST_BIN, is_x))
                if rest:
                    column.extend(_bins(data[complete * FIRST_BIN:], rest, is_x))
            self.bin_size, self._partial = FIRST_BIN, rest
            return
        bins = self.rows // 2
        complete = bins - (1 if self._partial else 0)
        pairs = complete // 2
        for column, is_x in self._columns:
            data = column.view().copy()
            first, second = data[0:4 * pairs:4], data[3:4 * pairs:4]  # x: first of one, last of the next
            if not is_x:
                first = np.fmax(data[0:4 * pairs:4], data[2:4 * pairs:4])
                second = np.fmin(data[1:4 * pairs:4], data[3:4 * pairs:4])
            merged = np.empty((2 * pairs, *data.shape[1:]), dtype=data.dtype)
            merged[0::2], merged[1::2] = first, second
            tail = data[4 * pairs:]  # an odd complete bin and/or the partial one: they merge into one
            if len(tail) == 4:
                tail = _merge_two(tail, is_x)
            column.clear()
            column.extend(merged)
            if len(tail):
                column.extend(tail)
        if complete % 2:
            self._partial = self.bin_size + self._partial
        self.bin_size *= 2


def _bins(values: np.ndarray, size: int, is_x: bool) -> np.ndarray:
    """Rows for consecutive bins of `size` batches (the last may be shorter: then it is one bin)."""
    groups = -(-len(values) // size)
    if len(values) % size:  # one short bin: every value is in it
        size = len(values)
    shaped = values.reshape(groups, size, *values.shape[1:])
    out = np.empty((2 * groups, *values.shape[1:]), dtype=values.dtype)
    if is_x:
        out[0::2], out[1::2] = shaped[:, 0], shaped[:, -1]
    else:
        out[0::2] = np.fmax.reduce(shaped, axis=1)
        out[1::2] = np.fmin.reduce(shaped, axis=1)
    return out


def _merge_two(rows: np.ndarray, is_x: bool) -> np.ndarray:
    """Two bins (four rows) as one (two rows)."""
    if is_x:
        return np.stack([rows[0], rows[3]])
    return np.stack([np.fmax(rows[0], rows[2]), np.fmin(rows[1], rows[3])])
