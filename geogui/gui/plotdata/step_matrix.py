"""A row of numbers per training step (every expert's utilization in every layer, say), kept for a run
of any length in bounded memory, and read back as the image a heatmap draws. Numpy only.

The idea is `level_of_detail`'s, for pictures instead of curves: up to `capacity` rows the store
holds every step's row. Past it, adjacent rows merge pairwise, so a row stands for 2, 4, 8, ...
consecutive steps (`bin_size`) and the store never holds more than `capacity` rows. A heatmap cell
shows an average, so a bin stands for the NaN-ignoring MEAN of its steps (a curve keeps extremes
instead), kept as the sum of its values and their count: merging adds them up, so a bin's mean is
the mean of the raw values it stands for however many merges made it, not a mean of means. A row of
NaNs (a geometric-mode batch has no routing) is a gap; a bin of NaNs and values holds the values' mean.

Each row knows the first and last step it stands for (`steps()`). On a step axis, step s is drawn
over [s - 0.5, s + 0.5], so a bin covers [first - 0.5, last + 0.5] and a mode change (drawn halfway
between two batches) falls on a cell edge.

`image()` bins the stored rows down to the pixels a view has, on a grid anchored at the run's first
step whose cell width is a whole number of bins: a cell holds whole bins, and panning never moves
the grid (a cell shows the same average wherever the view is).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from geogui.gui.plotdata.growable import GrowableArray
from geogui.gui.plotdata.level_of_detail import DEFAULT_CAPACITY

Columns = slice | np.ndarray | list[int]


@dataclass(frozen=True)
class StoredRow:
    """One stored row: the steps `first`..`last` it stands for and its NaN-ignoring means."""

    first: int
    last: int
    values: np.ndarray  # (W,) float32


class StepImage(NamedTuple):
    """Stored rows binned for a view (unpacks as `image, x0, x1`): `image[c, j]` is column c's mean over
    the steps of cell j, which covers x in [x0 + j * cell_steps, x0 + (j + 1) * cell_steps)."""

    image: np.ndarray  # (columns, cells) float32, NaN where a cell has no value
    x0: float
    x1: float

    @property
    def cells(self) -> int:
        return self.image.shape[1]

    @property
    def cell_steps(self) -> float:
        """Steps each cell covers (0 for an empty image)."""
        return (self.x1 - self.x0) / self.cells if self.cells else 0.0


class StepMatrix:
    """Rows of `width` float32 values, one per step until `capacity` rows, then bins of `bin_size`
    consecutive steps, each the NaN-ignoring mean of its steps. Steps must arrive in increasing order."""

    def __init__(self, width: int, capacity: int = DEFAULT_CAPACITY) -> None:
        if width < 1:
            raise ValueError(f"width must be at least 1, got {width}")
        if capacity < 2:
            raise ValueError(f"capacity must be at least 2 rows, got {capacity}")
        self.width = width
        self.capacity = capacity
        self.bin_size = 1  # steps per complete bin
        self._last_fill = 0  # steps in the last bin (bin_size when it is complete)
        self._first = GrowableArray(dtype=np.int64)
        self._last = GrowableArray(dtype=np.int64)
        # A bin's mean is kept as the sum of its values and how many there are (0 and 0 for none): merging
        # and binning are then plain additions, and a mean is one division when it is read. float32
        # counts are exact to 2**24 values a bin, and share the sums' type: no mixed-type arithmetic.
        self._sum = GrowableArray(width=width, dtype=np.float32)
        self._count = GrowableArray(width=width, dtype=np.float32)

    def __len__(self) -> int:
        """Rows stored."""
        return len(self._first)

    def nbytes(self) -> int:
        """Bytes held by the buffers (their spare capacity included)."""
        return sum(part.nbytes() for part in self._parts())

    def _parts(self) -> tuple[GrowableArray, ...]:
        return self._first, self._last, self._sum, self._count

    def clear(self) -> None:
        for part in self._parts():
            part.clear()
        self.bin_size, self._last_fill = 1, 0

    def steps(self) -> tuple[np.ndarray, np.ndarray]:
        """Each stored row's first and last step (equal while every step is a row of its own); copies."""
        return self._first.view().copy(), self._last.view().copy()

    @property
    def first_step(self) -> int | None:
        """The first step stored (None when empty)."""
        return int(self._first.view()[0]) if len(self) else None

    @property
    def last_step(self) -> int | None:
        return int(self._last.view()[-1]) if len(self) else None

    def centres(self) -> np.ndarray:
        """Each stored row's centre step: (first + last) / 2."""
        return (self._first.view() + self._last.view()) / 2.0

    def rows(self) -> np.ndarray:
        """The stored rows' means, (len, width) float32, NaN where a row has no value."""
        return _means(self._sum.view(), self._count.view())

    # -- adding -----------------------------------------------------------------------------------
    def append(self, steps: np.ndarray, rows: np.ndarray) -> None:
        """New steps (n,) and their rows (n, width), steps increasing and after every stored one."""
        steps = np.asarray(steps, dtype=np.int64).reshape(-1)
        rows = np.asarray(rows, dtype=np.float32).reshape(len(steps), self.width)
        if not len(steps):
            return
        if np.any(np.diff(steps) <= 0) or (len(self) and steps[0] <= self._last.view()[-1]):
            raise ValueError("steps must increase, and come after the steps already stored")
        for start in range(0, len(steps), self.capacity):  # never more than twice the capacity held
            self._append_chunk(steps[start:start + self.capacity], rows[start:start + self.capacity])
            while len(self) > self.capacity:
                self._coarsen()

    def _append_chunk(self, steps: np.ndarray, rows: np.ndarray) -> None:
        missing = np.isnan(rows)
        sums = np.where(missing, np.float32(0), rows)
        counts = (~missing).astype(np.float32)
        size = self.bin_size
        if len(self) and self._last_fill < size:  # the last bin is not full yet: fill it first
            take = min(size - self._last_fill, len(steps))
            self._sum.view()[-1] += sums[:take].sum(axis=0)
            self._count.view()[-1] += counts[:take].sum(axis=0)
            self._last.view()[-1] = steps[take - 1]
            self._last_fill += take
            steps, sums, counts = steps[take:], sums[take:], counts[take:]
        if not len(steps):
            return
        whole, rest = divmod(len(steps), size)
        if size == 1:
            self._extend(steps, steps, sums, counts)
        elif whole:
            n = whole * size
            self._extend(steps[:n:size], steps[size - 1:n:size], sums[:n].reshape(whole, size, -1).sum(axis=1),
                         counts[:n].reshape(whole, size, -1).sum(axis=1))
        if rest and size > 1:
            self._extend(steps[-rest:][:1], steps[-1:], sums[-rest:].sum(axis=0)[None],
                         counts[-rest:].sum(axis=0)[None])
        self._last_fill = rest or size

    def _extend(self, first, last, sums, counts) -> None:
        for part, new in zip(self._parts(), (first, last, sums, counts)):
            part.extend(new)

    def _coarsen(self) -> None:
        """Merge adjacent rows pairwise: bins twice as long, half as many rows."""
        first, last, sums, counts = (part.view().copy() for part in self._parts())
        pairs = 2 * (len(first) // 2)
        merged = [first[0:pairs:2], last[1:pairs:2], sums[0:pairs:2] + sums[1:pairs:2],
                  counts[0:pairs:2] + counts[1:pairs:2]]
        if len(first) % 2:  # an odd row out (the last, maybe partial) stays a bin of its own
            merged = [np.concatenate([part, whole[-1:]]) for part, whole in zip(merged, (first, last, sums, counts))]
        else:  # the last pair is a complete bin and the last one
            self._last_fill += self.bin_size
        for part in self._parts():
            part.clear()
        self._extend(*merged)
        self.bin_size *= 2

    # -- reading ----------------------------------------------------------------------------------
    def image(self, columns: Columns, x_range: tuple[float, float] | None, pixels: int) -> StepImage:
        """The stored rows whose cells meet `x_range` (steps; None: the whole run) in at most `pixels`
        cells of equal width, each the NaN-ignoring mean of the raw values of the bins it holds (a bin
        belongs to the cell its centre lies in). The first and last cell may reach a little past the
        range: a cell always holds whole bins."""
        pixels = max(1, int(pixels))
        cols = _columns(columns)
        empty = StepImage(np.empty((self._column_count(cols), 0), np.float32), 0.0, 0.0)
        if not len(self):
            return empty
        origin = float(self._first.view()[0]) - 0.5
        end = float(self._last.view()[-1]) + 0.5
        view = (origin, end) if x_range is None else (float(x_range[0]), float(x_range[1]))
        lo, hi = max(view[0], origin), min(view[1], end)
        if hi <= lo:
            return empty
        width, j_lo, j_hi = _grid(lo - origin, hi - origin, view[1] - view[0], pixels, self.bin_size,
                                  anchored=x_range is None)
        centres = self.centres()
        left, right = origin + j_lo * width, origin + j_hi * width
        start, stop = np.searchsorted(centres, [left, right], side="left")
        cells = j_hi - j_lo
        sums, counts = self._sum.view()[start:stop, cols], self._count.view()[start:stop, cols]
        cell = np.floor((centres[start:stop] - left) / width).astype(np.int64)
        if stop - start == cells and np.all(np.diff(cell) == 1):  # a row per cell: nothing to add up
            image = _means(sums, counts)
        else:  # add up each cell's rows; a cell without any (a gap between steps) stays NaN
            image = np.full((cells, sums.shape[1]), np.nan, np.float32)
            if stop > start:
                firsts = np.flatnonzero(np.concatenate([[True], cell[1:] != cell[:-1]]))  # a filled cell's first row
                image[cell[firsts]] = _means(np.add.reduceat(sums, firsts, axis=0),
                                             np.add.reduceat(counts, firsts, axis=0))
        return StepImage(np.ascontiguousarray(image.T), left, right)

    def _column_count(self, cols: slice | np.ndarray) -> int:
        return len(range(self.width)[cols]) if isinstance(cols, slice) else len(cols)

    def window_mean(self, columns: Columns, last_steps: int) -> np.ndarray:
        """The NaN-ignoring mean over the last `last_steps` steps of each column (a bin counts, whole,
        when its centre lies in them; the last bin always counts); NaN where they hold no value."""
        cols = _columns(columns)
        if not len(self):
            return np.full(self._column_count(cols), np.nan, np.float32)
        cutoff = float(self._last.view()[-1]) - last_steps + 0.5
        start = min(int(np.searchsorted(self.centres(), cutoff, side="left")), len(self) - 1)
        return _means(self._sum.view()[start:, cols].sum(axis=0), self._count.view()[start:, cols].sum(axis=0))

    def value_at(self, step: float) -> StoredRow | None:
        """The stored row whose steps hold `step`, else the nearest one; None when nothing is stored."""
        if not len(self):
            return None
        first, last = self._first.view(), self._last.view()
        index = int(np.searchsorted(first, step, side="right")) - 1
        if index < 0:
            index = 0
        elif index + 1 < len(first) and step > last[index] and first[index + 1] - step < step - last[index]:
            index += 1
        values = _means(self._sum.view()[index], self._count.view()[index])
        return StoredRow(int(first[index]), int(last[index]), values)


def _grid(lo: float, hi: float, span: float, pixels: int, size: int, anchored: bool) -> tuple[int, int, int]:
    """Steps per cell and the first and past-the-last cell that [lo, hi) meets, counted from the grid's
    origin, for a view `span` steps wide (lo..hi lies in it) of `pixels` pixels: at most `pixels`
    cells, each a whole number of bins (`size` steps) and about a pixel wide. `anchored`: the view
    starts at the origin. Otherwise the width depends on the span alone, never on where the view is,
    so that panning keeps the grid (and every cell its mean)."""
    narrowest = size * max(1, math.ceil(span / pixels / size))
    if pixels == 1:
        width = max(narrowest, size * math.ceil(hi / size))  # one cell, from the origin
    elif anchored or math.ceil(span / narrowest) + 1 <= pixels:
        width = narrowest  # n steps meet at most ceil(n / width) + 1 cells, ceil(n / width) from the origin
    else:
        width = size * math.ceil(span / (pixels - 1) / size)
    return width, math.floor(lo / width), math.ceil(hi / width)


def _columns(columns: Columns) -> slice | np.ndarray:
    """A slice stays one (a view of the rows, no copy); anything else is an index array."""
    return columns if isinstance(columns, slice) else np.asarray(columns, dtype=np.int64)


def _means(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """sums / counts, NaN where there is no value (count 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts).astype(np.float32, copy=False)
