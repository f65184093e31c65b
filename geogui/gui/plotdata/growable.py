"""A numpy array that grows by doubling, the storage behind every live plot.

Appending is amortised O(1) and `view()` is a zero-copy slice, so a redraw hands pyqtgraph the
whole series without copying it. A view stays valid after the buffer grows (it keeps the old block
alive), it simply does not see later rows.
"""

from __future__ import annotations

import numpy as np


class GrowableArray:
    """Rows of a fixed width (or scalars when width is None), stored in a doubling buffer."""

    def __init__(self, width: int | None = None, dtype: type = np.float64, capacity: int = 1024) -> None:
        self._row_shape: tuple[int, ...] = () if width is None else (width,)
        self._data = np.empty((max(1, capacity), *self._row_shape), dtype=dtype)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def row_shape(self) -> tuple[int, ...]:
        return self._row_shape

    def nbytes(self) -> int:
        """Bytes of the buffer, spare capacity included."""
        return int(self._data.nbytes)

    @property
    def capacity(self) -> int:
        return self._data.shape[0]

    def append(self, row: float | np.ndarray) -> None:
        self._reserve(self._size + 1)
        self._data[self._size] = row
        self._size += 1

    def extend(self, rows: np.ndarray | list) -> None:
        rows = np.asarray(rows, dtype=self._data.dtype).reshape(-1, *self._row_shape)
        self._reserve(self._size + len(rows))
        self._data[self._size:self._size + len(rows)] = rows
        self._size += len(rows)

    def view(self) -> np.ndarray:
        return self._data[:self._size]

    def clear(self) -> None:
        self._size = 0

    def _reserve(self, size: int) -> None:
        if size <= self.capacity:
            return
        capacity = self.capacity
        while capacity < size:
            capacity *= 2
        grown = np.empty((capacity, *self._row_shape), dtype=self._data.dtype)
        grown[:self._size] = self._data[:self._size]
        self._data = grown
