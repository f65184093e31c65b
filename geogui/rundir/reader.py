"""The one reader of metrics.jsonl: as columns (`MetricsReader`, `read_columns`), as its JSON
objects (`read_lines`), as typed records (`read_records`), and its last batch (`last_logged`).

Every way of reading keeps the same rules. Only complete lines are read: a line still being
written, or torn by a crash, is left for the next read (`incomplete_tail`). A complete line that
is not a record is skipped and counted (`skipped_lines`). A rewind at step k (a "resumed" line,
written when the run was continued from its checkpoint at k) drops the batches, evaluations and
mode changes logged before it past k. Both batch line forms (compact and long) read the same.

Columns are read in chunks (`CHUNK_BYTES`), with a progress callback and a cancel check between
chunks, so that a caller may run a read on a worker thread behind a progress bar; they come from
metrics.cache/ where it still matches the log (`segments`), and what had to be parsed is cached.
A `MetricsReader` can be followed: each `read()` returns what was appended since the last one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import msgspec
import numpy as np

from geogui.engine.log_lines import COMPACT_MARKER, normalize_line
from geogui.engine.metrics import BatchRecord, EvalRecord, LoggedRecord, ModeChange, RecordKind, RunEvent
from geogui.engine.samples import AccuracyRecord
from geogui.rundir.assemble import ColumnBuilder
from geogui.rundir.columns import MATRIX_FIELDS, NO_WIDTHS, Cancel, Progress, ReadCancelled, RunColumns
from geogui.rundir.layout import METRICS_FILE, RunLogError
from geogui.rundir.lines import Part, decode_line, logged_record, parse_part
from geogui.rundir.meta import RunMeta, read_meta
from geogui.rundir.segments import cached_plan, load_segment, remove, write_segment

CHUNK_BYTES = 8 << 20  # parsed per step: ~0.1 s, the granularity of progress and cancel
MIN_CACHED_CHUNK = 2 << 20  # a reader caches only chunks this large (a live poll never writes)
TAIL_BYTES = 64 << 10  # read from the end for the last batch; grown (x4) up to MAX_TAIL_BYTES
MAX_TAIL_BYTES = 4 << 20
_REWOUND = (RecordKind.BATCH, RecordKind.EVAL, RecordKind.ACCURACY, RecordKind.MODE_CHANGE)


def _check(cancel: Cancel | None) -> None:
    if cancel is not None and cancel():
        raise ReadCancelled()


class _Chunks:
    """The complete lines of an open metrics.jsonl from `offset` (to `stop`, a line boundary, or
    the end), a chunk at a time: (bytes ending with a newline, where they start). Afterwards
    `torn` says whether bytes after the last newline were left."""

    def __init__(self, handle, offset: int, stop: int | None = None, cancel: Cancel | None = None) -> None:
        self.handle, self.offset, self.stop, self.cancel = handle, offset, stop, cancel
        self.torn = False

    def __iter__(self) -> Iterator[tuple[bytes, int]]:
        self.handle.seek(self.offset)
        carry, position = b"", self.offset  # `carry` starts at `position`
        self.torn = False
        while True:
            _check(self.cancel)
            want = CHUNK_BYTES if self.stop is None else min(CHUNK_BYTES, self.stop - position - len(carry))
            block = self.handle.read(want) if want > 0 else b""
            if not block:
                self.torn = bool(carry)
                return
            data = carry + block
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # one line longer than a chunk
                carry = data
                continue
            resume_at = self.handle.tell()
            yield data[:cut], position
            self.handle.seek(resume_at)  # the consumer may have read elsewhere in the file
            position += cut
            carry = data[cut:]


def column_widths(meta: RunMeta) -> list[int]:
    """The widths of the matrices (MATRIX_FIELDS) of a run with these settings: P * r, E + G, G,
    L * (E + G), L, L, P * P."""
    model = meta.model_settings()
    presentations, layers = model.presentations, model.n_layers
    return [presentations * model.rotation_dimensions, presentations, model.num_ghost_experts,
            layers * presentations, layers, layers, presentations * presentations]


def _widths_from_meta(run_dir: Path) -> list[int]:
    try:
        return column_widths(read_meta(run_dir))
    except (RunLogError, ValueError):
        return list(NO_WIDTHS)


class MetricsReader:
    """Reads a run's metrics.jsonl as columns, and then what is appended to it, read by read.

    `cache`: use metrics.cache/ and add to it (False reads the JSON only). The matrices keep one
    width from read to read, even while every batch so far had none of a kind (standard mode has
    no angles): `widths` (`column_widths`), by default from meta.json's model settings, else from
    the first batch that has them."""

    def __init__(self, run_dir: Path, cache: bool = True, widths: tuple[int, ...] | list[int] | None = None):
        self.run_dir = Path(run_dir)
        self.widths = list(widths) if widths is not None else _widths_from_meta(self.run_dir)
        self.path = self.run_dir / METRICS_FILE
        self.cache = cache
        self.offset = 0  # bytes of metrics.jsonl consumed
        self.skipped_lines = 0  # complete lines that were not records, in everything read so far
        self.incomplete_tail = False  # bytes after the last newline
        self.cached_bytes = 0  # of the last full read, how much came from the cache

    def read(self, progress: Progress | None = None, cancel: Cancel | None = None) -> tuple[RunColumns, bool]:
        """The batches and records logged since the last read, and whether they replace everything
        returned before (the first read, or a rewind superseded earlier records: the whole run is
        then returned as it now stands). Raises ReadCancelled when `cancel()` says so; the reader
        is then as it was before the call."""
        if self.offset == 0:
            return self._read_all(progress, cancel), True
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return self._fitted(RunColumns.empty()), False
        with handle:
            size = os.fstat(handle.fileno()).st_size
            if size < self.offset:  # not the file read before (truncated or replaced): start over
                handle.close()
                return self._read_all(progress, cancel), True
            chunks = _Chunks(handle, self.offset, cancel=cancel)
            parts = [part for part, _end in self._parts(chunks, size, progress, cache=False)]
        if any(entry[1] == RecordKind.REWIND for part in parts for entry in part.entries):
            return self._read_all(progress, cancel), True
        columns = ColumnBuilder()
        for part in parts:
            columns.add(part)
        self.offset = parts[-1].end if parts else self.offset
        self.incomplete_tail = chunks.torn
        self.skipped_lines += columns.skipped
        return self._fitted(columns.result(self.widths)), False

    def _fitted(self, columns: RunColumns) -> RunColumns:
        for index, name in enumerate(MATRIX_FIELDS):
            matrix = getattr(columns, name)
            if matrix.shape[1] and not self.widths[index]:
                self.widths[index] = matrix.shape[1]
            elif not matrix.shape[1] and self.widths[index]:
                setattr(columns, name, np.full((len(columns), self.widths[index]), np.nan, dtype=np.float32))
        return columns

    def _read_all(self, progress: Progress | None, cancel: Cancel | None) -> RunColumns:
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            self.offset, self.incomplete_tail, self.skipped_lines = 0, False, 0
            return self._fitted(RunColumns.empty())
        columns = ColumnBuilder()
        with handle:
            size = os.fstat(handle.fileno()).st_size
            offset = self._add_cached(handle, size, columns, progress, cancel)
            chunks = _Chunks(handle, offset, cancel=cancel)
            for part, offset in self._parts(chunks, size, progress, self.cache, columns):
                columns.add(part)
        self.offset, self.incomplete_tail = offset, chunks.torn
        self.skipped_lines = columns.skipped
        return self._fitted(columns.result(self.widths))

    def _add_cached(self, handle, size: int, columns: ColumnBuilder, progress, cancel) -> int:
        """Add the segments of the cache that still match, parsing the gaps between them; returns
        where the cache stops."""
        plan, leftovers = cached_plan(self.run_dir, size, handle) if self.cache else ([], [])
        for path in leftovers:
            remove(path)
        offset = cached = 0
        for index, (start, end, path) in enumerate(plan):
            if start > offset:  # what no segment holds: parsed (and cached, if it is large)
                gap = _Chunks(handle, offset, stop=start, cancel=cancel)
                for part, offset in self._parts(gap, size, progress, True, columns):
                    columns.add(part)
            _check(cancel)
            part = load_segment(path, start, end, handle)
            if part is None:
                for _start, _end, stale in plan[index:]:
                    remove(stale)
                break
            if not columns.capacity and part.rows:  # room for the whole run at once: growing copies it
                columns.reserve(int(size / ((end - start) / part.rows) * 1.02) + 1024)
            columns.add(part)
            offset, cached = end, cached + end - start
            if progress is not None:
                progress(offset, size)
        self.cached_bytes = cached
        return offset

    def _parts(self, chunks: _Chunks, size: int, progress: Progress | None, cache: bool,
               columns: ColumnBuilder | None = None) -> Iterator[tuple[Part, int]]:
        """(part, consumed up to) for each chunk."""
        for data, start in chunks:
            part = parse_part(data, start)
            if cache and len(data) >= MIN_CACHED_CHUNK:
                write_segment(self.run_dir, part, chunks.handle)
            if columns is not None and columns.capacity == 0 and part.rows:
                columns.reserve(part.rows + int((size - part.end) / (len(data) / part.rows) * 1.02) + 1024)
            if progress is not None:
                progress(part.end, max(size, part.end))
            yield part, part.end


def read_columns(run_dir: Path, progress: Progress | None = None, cancel: Cancel | None = None,
                 cache: bool = True, widths: tuple[int, ...] | list[int] | None = None) -> RunColumns:
    """The whole run as columns (see MetricsReader)."""
    return MetricsReader(run_dir, cache=cache, widths=widths).read(progress, cancel)[0]


def parse_columns(data: bytes) -> RunColumns:
    """Columns of metrics.jsonl text held in memory (complete lines; a torn last line is ignored)."""
    cut = data.rfind(b"\n") + 1
    columns = ColumnBuilder()
    columns.add(parse_part(data[:cut]))
    return columns.result()


# -- the JSON objects, and typed records --------------------------------------------------------------
@dataclass
class LogLines:
    lines: list[dict[str, Any]] = field(default_factory=list)
    skipped_lines: int = 0  # complete lines that are not JSON objects (or a rewind without a step)
    incomplete_tail: bool = False


def _decoded(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        try:  # the standard library also reads NaN and Infinity
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None


def _rewind_step(data: dict[str, Any]) -> int | float | None:
    step = data.get("step")
    return step if isinstance(step, (int, float)) and not isinstance(step, bool) else None


def _rewound(lines: list[dict[str, Any]], k: int | float) -> list[dict[str, Any]]:
    def superseded(line: dict[str, Any]) -> bool:
        step = line.get("step")
        return line.get("kind") in _REWOUND and isinstance(step, (int, float)) and step > k

    return [line for line in lines if not superseded(line)]


def read_lines(run_dir: Path, rewind: bool = True) -> LogLines:
    """Every complete line of metrics.jsonl as its JSON object, batch lines in the long form
    whichever form they were written in (`log_lines.normalize_line`). With `rewind`, as the run
    stands after its rewinds (superseded lines and the rewinds themselves left out); without, as
    the file has them. Raises OSError when the file cannot be read."""
    out = LogLines()
    with open(Path(run_dir) / METRICS_FILE, "rb") as handle:
        chunks = _Chunks(handle, 0)
        for data, _start in chunks:
            for raw in data[:-1].split(b"\n"):
                line = _decoded(raw)
                if not isinstance(line, dict):
                    out.skipped_lines += 1
                elif rewind and line.get("kind") == RecordKind.REWIND:
                    k = _rewind_step(line)
                    if k is None:
                        out.skipped_lines += 1
                    else:
                        out.lines = _rewound(out.lines, k)
                else:
                    out.lines.append(normalize_line(line))
        out.incomplete_tail = chunks.torn
    return out


_LOGGED = (BatchRecord, EvalRecord, AccuracyRecord, ModeChange, RunEvent)


def read_records(run_dir: Path) -> list[LoggedRecord]:
    """The run as typed records (batches, evaluations, accuracies, mode changes, events), in the order they
    were logged, after its rewinds: one object per batch, for short runs and replays (a long run
    is read as columns). Lines that are not readable records are left out."""
    records: list[LoggedRecord] = []
    for line in read_lines(run_dir).lines:
        try:
            record = logged_record(line)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            continue
        if isinstance(record, _LOGGED):
            records.append(record)
    return records


# -- the end of the log -------------------------------------------------------------------------------------
class LastLogged(NamedTuple):
    step: int  # of the last batch, or of a rewind logged after it (the run then stands at that step)
    loss: float | None  # the last batch's, None after a rewind or when it was not finite


def _last_in(data: bytes) -> LastLogged | None:
    for raw in reversed(data.split(b"\n")):
        line = decode_line(raw) if raw else None
        if line is None or not isinstance(line.step, (int, float)):
            continue
        if line.kind == RecordKind.REWIND:
            return LastLogged(int(line.step), None)
        if line.kind == RecordKind.BATCH:
            loss = line.loss
            if loss is not None and getattr(line, COMPACT_MARKER) is not None:
                loss = float(np.float32(loss))  # the device's float32, as the trainer had it
            return LastLogged(int(line.step), loss)
    return None


def torn_tail(run_dir: Path) -> bool:
    """Whether metrics.jsonl ends in the middle of a line (a crash mid-write, or a line being written)."""
    try:
        with open(Path(run_dir) / METRICS_FILE, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                return False
            handle.seek(size - 1)
            return handle.read(1) != b"\n"
    except OSError:
        return False


def last_logged(run_dir: Path) -> LastLogged | None:
    """The last batch in metrics.jsonl, read from the end of the file (what a live run's meta.json
    may not say yet); None when there is none, or none in its last MAX_TAIL_BYTES."""
    try:
        handle = open(Path(run_dir) / METRICS_FILE, "rb")
    except OSError:
        return None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        window = TAIL_BYTES
        while True:
            start = max(0, size - window)
            handle.seek(start)
            data = handle.read(size - start)
            data = data[: data.rfind(b"\n") + 1]  # complete lines only
            if start > 0:
                data = data[data.find(b"\n") + 1:]  # the first may have begun before the window
            found = _last_in(data)
            if found is not None or start == 0 or window >= MAX_TAIL_BYTES:
                return found
            window *= 4
