"""A run's metrics.jsonl as numpy columns, read in chunks, without a Python object per batch.

A million-step run is a gigabyte of JSON lines; holding each batch as a BatchRecord would take
gigabytes. `read_run_columns` parses the file a chunk at a time (msgspec decodes a whole chunk into
plain structs, then each field becomes one numpy column) and keeps only the columns:
19 float64 scalars and three float32 matrices, about 330 bytes per batch at the default model. The
matrices are float32 because the angles are computed in float32 and every other matrix value is
written with float32's precision (see metrics.py), so nothing shown is lost; in float64 they alone
would take 350 bytes per batch.

The reader keeps today's semantics: a line that is not a readable record is skipped and counted
(`skipped_lines`), a torn last line is left for the next read, a `resumed` marker at step k drops
the batches and evaluations logged before it past k, and both line forms (compact and long) read
to the same values as `record_from_json`.

Reading can be followed: `RunColumnsReader.read()` returns what was appended since the last read
(from a byte offset), and it takes a progress callback and a cancel check between chunks, so that
a caller may run it on a worker thread behind a progress bar.

The cache. JSON cannot be parsed much faster than ~100-300 MB/s, so reopening a long run would
still take seconds. Next to metrics.jsonl, `metrics.cache/` holds the columns of byte ranges of it
(`<start>-<end>.npz`): the RunLog writes one every few megabytes as it logs, and a reader writes
one for each large chunk it had to parse. A segment is used only when it starts where the
previous one ended and the bytes at both of its ends still match metrics.jsonl; anything else is
ignored (and removed), and the JSON is parsed again. metrics.jsonl stays the record: deleting
the cache loses nothing.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any, Callable

import msgspec
import numpy as np

from geogui.engine.metrics import (
    BATCH_LINE_NAMES,
    DEVICE_FLOAT32,
    BatchRecord,
    EvalRecord,
    LoggedRecord,
    ModeChange,
    RunEvent,
    record_from_json,
)

METRICS_FILE = "metrics.jsonl"
CACHE_DIR = "metrics.cache"
CACHE_VERSION = 1  # bump when what a segment holds, or how lines are read, changes
CHUNK_BYTES = 8 << 20  # parsed per step: ~0.1 s, the granularity of progress and cancel
SEGMENT_BYTES = 4 << 20  # a writer caches this much of the log per segment
MIN_CACHED_CHUNK = 2 << 20  # a reader caches only chunks this large (a live poll never writes)
_SAMPLE = 256  # bytes at each end of a segment's range that must still match metrics.jsonl

SCALAR_FIELDS = (
    "step", "epoch", "batch_time_s", "data_time_s", "loss", "task_loss", "aux_loss", "penalty", "orthogonality",
    "specialization", "lr_model", "lr_rotation", "saturation", "tokens_per_s", "tokens_seen", "memory_bytes",
    "driver_memory_bytes", "wall_time_s", "penalty_weight",
)
MATRIX_FIELDS = ("rotation_angles", "expert_load", "ghost_activation")
_WIDENED = tuple(name for name in SCALAR_FIELDS if name in DEVICE_FLOAT32)
_INTEGRAL = ("step", "tokens_seen")


class ReadCancelled(Exception):
    """The caller's cancel check said stop; nothing read so far is returned."""


@dataclass
class RunColumns:
    """A run's batches as columns (row i is the i-th batch still standing after resumes), its
    evaluations as three columns, and its mode changes and events as lists.

    Scalars are float64 (NaN where the value was not finite or not logged, as in BatchRecord);
    `mode` holds indices into `modes`; the matrices are float32: `rotation_angles` (N, P * r),
    presentation-major (column p * r + i is angle i of presentation p), NaN rows for batches that
    had none (standard mode), `expert_load` (N, E + G), `ghost_activation` (N, G).
    `*_row` say where each evaluation, mode change and event was logged: before batch row `row`
    (so after row - 1), which is how `records()` interleaves them again."""

    step: np.ndarray
    epoch: np.ndarray
    batch_time_s: np.ndarray
    data_time_s: np.ndarray
    loss: np.ndarray
    task_loss: np.ndarray
    aux_loss: np.ndarray
    penalty: np.ndarray
    orthogonality: np.ndarray
    specialization: np.ndarray
    lr_model: np.ndarray
    lr_rotation: np.ndarray
    saturation: np.ndarray
    tokens_per_s: np.ndarray
    tokens_seen: np.ndarray
    memory_bytes: np.ndarray
    driver_memory_bytes: np.ndarray
    wall_time_s: np.ndarray
    penalty_weight: np.ndarray
    mode: np.ndarray
    modes: list[str]
    rotation_angles: np.ndarray
    expert_load: np.ndarray
    ghost_activation: np.ndarray
    eval_step: np.ndarray
    eval_loss: np.ndarray
    eval_perplexity: np.ndarray
    mode_changes: list[ModeChange] = field(default_factory=list)
    events: list[RunEvent] = field(default_factory=list)
    skipped_lines: int = 0
    eval_row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    mode_change_row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    event_row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.step)

    @classmethod
    def empty(cls, angles: int = 0, experts: int = 0, ghosts: int = 0) -> "RunColumns":
        scalars = {name: np.zeros(0) for name in SCALAR_FIELDS}
        return cls(**scalars, mode=np.zeros(0, dtype=np.int16), modes=[],
                   rotation_angles=np.zeros((0, angles), dtype=np.float32),
                   expert_load=np.zeros((0, experts), dtype=np.float32),
                   ghost_activation=np.zeros((0, ghosts), dtype=np.float32),
                   eval_step=np.zeros(0), eval_loss=np.zeros(0), eval_perplexity=np.zeros(0))

    def mode_names(self) -> list[str]:
        """The mode of every batch, as strings (a list of N references to `modes`)."""
        table = self.modes
        return [table[i] for i in self.mode.tolist()]

    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in (*SCALAR_FIELDS, "mode", *MATRIX_FIELDS))

    def batch(self, row: int, presentations: int | None = None) -> BatchRecord:
        """Row `row` as a BatchRecord (angles (P, r) with P = `presentations`, default the number
        of experts; a row without angles has None)."""
        values: dict[str, Any] = {name: float(getattr(self, name)[row]) for name in SCALAR_FIELDS}
        values["step"], values["tokens_seen"] = int(values["step"]), int(values["tokens_seen"])
        angles = self.rotation_angles[row].astype(np.float64)
        if angles.size and not np.isnan(angles).all():
            p = presentations or self.expert_load.shape[1]
            values["rotation_angles"] = angles.reshape(p, -1) if p and angles.size % p == 0 else angles
        else:
            values["rotation_angles"] = None
        values["expert_load"] = self.expert_load[row].astype(np.float64)
        values["ghost_activation"] = self.ghost_activation[row].astype(np.float64)
        return BatchRecord(mode=self.modes[int(self.mode[row])], **values)

    def records(self, presentations: int | None = None) -> list[LoggedRecord]:
        """Everything as typed records in the order it was logged (events and mode changes logged
        between the same two batches come evaluation first, then mode changes, then events).
        One object per batch: for code that has not moved to columns yet."""
        entries: list[tuple[int, int, int, LoggedRecord]] = []
        for i, (step, loss, perplexity) in enumerate(zip(self.eval_step.tolist(), self.eval_loss.tolist(),
                                                         self.eval_perplexity.tolist())):
            entries.append((int(self.eval_row[i]), 0, i, EvalRecord(int(step), loss, perplexity)))
        for order, (rows, items) in enumerate(((self.mode_change_row, self.mode_changes),
                                               (self.event_row, self.events)), start=1):
            entries.extend((int(row), order, i, item) for i, (row, item) in enumerate(zip(rows.tolist(), items)))
        entries.sort(key=lambda entry: entry[:3])
        out: list[LoggedRecord] = []
        row = 0
        for at, _order, _index, item in entries:
            while row < min(at, len(self)):
                out.append(self.batch(row, presentations))
                row += 1
            out.append(item)
        out.extend(self.batch(r, presentations) for r in range(row, len(self)))
        return out


# -- one line, decoded -----------------------------------------------------------------------------
OptFloat = float | None
OptList = list[float | None] | None


class _Line(msgspec.Struct):
    """Every field any metrics.jsonl line may carry, in both batch forms; absent ones are None."""

    kind: str | None = None
    step: int | float | None = None
    epoch: OptFloat = None
    mode: str | None = None
    penalty_weight: OptFloat = None
    batch_time_s: OptFloat = None
    batch_s: OptFloat = None
    data_time_s: OptFloat = None
    data_s: OptFloat = None
    loss: OptFloat = None
    task_loss: OptFloat = None
    aux_loss: OptFloat = None
    penalty: OptFloat = None
    orthogonality: OptFloat = None
    specialization: OptFloat = None
    lr_model: OptFloat = None
    lr_rotation: OptFloat = None
    lr_rot: OptFloat = None
    saturation: OptFloat = None
    tokens_per_s: OptFloat = None
    tokens_seen: int | float | None = None
    memory_bytes: OptFloat = None
    mem_bytes: OptFloat = None
    driver_memory_bytes: OptFloat = None
    driver_bytes: OptFloat = None
    wall_time_s: OptFloat = None
    wall_s: OptFloat = None
    rotation_angles: list[list[float | None]] | None = None
    angles: OptList = None
    expert_load: OptList = None
    loads: OptList = None
    ghost_activation: OptList = None
    ghosts: OptList = None
    perplexity: OptFloat = None
    previous_mode: str | None = None
    previous_penalty_weight: OptFloat = None
    event: str | None = None
    message: str | None = None


_CHUNK_DECODER = msgspec.json.Decoder(list[_Line])
_LINE_DECODER = msgspec.json.Decoder(_Line)


def _line_from_record(record: LoggedRecord) -> _Line:
    """A line the fast decoder refused but today's reader accepts (say, a step written as 3.0),
    rebuilt from its typed record so that it goes through the same column code."""
    if isinstance(record, BatchRecord):
        angles = record.rotation_angles
        nested = None if angles is None else np.atleast_2d(angles).tolist()
        values = {name: getattr(record, name) for name in SCALAR_FIELDS}
        return _Line(kind="batch", mode=record.mode, rotation_angles=nested,
                     expert_load=record.expert_load.ravel().tolist(),
                     ghost_activation=record.ghost_activation.ravel().tolist(), **values)
    if isinstance(record, EvalRecord):
        return _Line(kind="eval", step=record.step, loss=record.loss, perplexity=record.perplexity)
    if isinstance(record, ModeChange):
        return _Line(kind="mode_change", step=record.step, mode=record.mode, penalty_weight=record.penalty_weight,
                     previous_mode=record.previous_mode, previous_penalty_weight=record.previous_penalty_weight)
    return _Line(kind="event", step=record.step, event=record.kind, message=record.message)


def _slow_line(raw: bytes) -> _Line | None:
    """One line by today's rules (stdlib json, record_from_json); None when it is not a record."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("kind") == "resumed":
        step = data.get("step")
        return _Line(kind="resumed", step=step) if isinstance(step, (int, float)) else None
    try:
        record = record_from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None
    return _Line(kind=data.get("kind") if isinstance(data.get("kind"), str) else None) if record is None \
        else _line_from_record(record)


def _decode(data: bytes) -> tuple[list[_Line], int]:
    """The complete lines in `data` (which ends with a newline), and how many were not records."""
    if not data:
        return [], 0
    try:  # one call for the whole chunk; the fallback only runs for a chunk with a bad line in it
        return _CHUNK_DECODER.decode(b"[" + data[:-1].replace(b"\n", b",") + b"]"), 0
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    lines, skipped = [], 0
    for raw in data[:-1].split(b"\n"):
        try:
            lines.append(_LINE_DECODER.decode(raw))
            continue
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
        line = _slow_line(raw)
        if line is None:
            skipped += 1
        else:
            lines.append(line)
    return lines, skipped


# -- a part: the columns of one byte range ------------------------------------------------------------
@dataclass
class _Part:
    start: int
    end: int
    arrays: dict[str, np.ndarray]  # SCALAR_FIELDS, "mode", MATRIX_FIELDS
    modes: list[str]
    # (row, kind, values): eval (step, loss, perplexity), mode_change (step, mode, weight, previous
    # mode, previous weight), event (step, kind, message), resumed (step,); row = batches before it
    entries: list[list]
    skipped: int

    @property
    def rows(self) -> int:
        return len(self.arrays["step"])


def _floats(values: list) -> np.ndarray:
    return np.array(values, dtype=np.float64) if values else np.zeros(0)


def _scalar(rows: list[_Line], compact: np.ndarray, name: str) -> np.ndarray:
    short = BATCH_LINE_NAMES.get(name, name)
    if short == name:
        return _floats(list(map(attrgetter(name), rows)))
    if compact.all():
        return _floats(list(map(attrgetter(short), rows)))
    if not compact.any():
        return _floats(list(map(attrgetter(name), rows)))
    return _floats([getattr(r, short) if c else getattr(r, name) for r, c in zip(rows, compact.tolist())])


def _matrix(lists: list, nested: bool) -> np.ndarray:
    """(n, width) float32 from per-row lists (None rows and rows of another width become NaN)."""
    n = len(lists)
    present = [i for i, value in enumerate(lists) if value]
    if not present:
        return np.zeros((n, 0), dtype=np.float32)
    values = [lists[i] for i in present]
    try:
        block = np.array(values, dtype=np.float32).reshape(len(values), -1)
    except ValueError:  # ragged: rows of differing widths, or a nested row that is not (P, r)
        flat = [[v for row in value for v in (row if isinstance(row, list) else [row])] if nested else value
                for value in values]
        width = len(flat[0])
        block = np.full((len(flat), width), np.nan, dtype=np.float32)
        for j, row in enumerate(flat):
            if len(row) == width:
                block[j] = np.array(row, dtype=np.float32)
    if len(present) == n:
        return block
    out = np.full((n, block.shape[1]), np.nan, dtype=np.float32)
    out[present] = block
    return out


def _batch_arrays(rows: list[_Line]) -> tuple[dict[str, np.ndarray], list[str]]:
    compact = np.fromiter((r.loads is not None for r in rows), dtype=bool, count=len(rows))
    arrays = {name: _scalar(rows, compact, name) for name in SCALAR_FIELDS}
    for name in _INTEGRAL:  # int(raw or 0), as record_from_json reads them
        column = arrays[name]
        arrays[name] = np.trunc(np.nan_to_num(column, nan=0.0, posinf=0.0, neginf=0.0))
    if compact.any():  # the device's float32 values, exactly (see metrics.py)
        for name in _WIDENED:
            column = arrays[name]
            widened = column.astype(np.float32).astype(np.float64)
            arrays[name] = widened if compact.all() else np.where(compact, widened, column)
    table: dict[str, int] = {}
    arrays["mode"] = np.fromiter((table.setdefault(str(r.mode), len(table)) for r in rows), dtype=np.int16,
                                 count=len(rows))
    if compact.all():
        arrays["rotation_angles"] = _matrix([r.angles for r in rows], nested=False)
    elif not compact.any():
        arrays["rotation_angles"] = _matrix([r.rotation_angles for r in rows], nested=True)
    else:
        flat = [r.angles if c else (None if r.rotation_angles is None else [v for row in r.rotation_angles
                                                                            for v in row])
                for r, c in zip(rows, compact.tolist())]
        arrays["rotation_angles"] = _matrix(flat, nested=False)
    for name in ("expert_load", "ghost_activation"):
        short = BATCH_LINE_NAMES[name]
        arrays[name] = _matrix([getattr(r, short) if c else getattr(r, name) for r, c in zip(rows, compact.tolist())],
                               nested=False)
    return arrays, list(table)


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _entry(line: _Line, row: int) -> list | None:
    """An evaluation, mode change, event or resume marker as a part entry; None for other lines."""
    kind, step = line.kind, line.step
    if kind not in ("eval", "mode_change", "event", "resumed"):
        return None
    if step is None:
        raise ValueError("no step")
    if kind == "eval":
        return [row, kind, int(step), _nan(line.loss), _nan(line.perplexity)]
    if kind == "mode_change":
        if line.penalty_weight is None or line.previous_penalty_weight is None or line.mode is None \
                or line.previous_mode is None:
            raise ValueError("incomplete mode change")
        return [row, kind, int(step), line.mode, float(line.penalty_weight), line.previous_mode,
                float(line.previous_penalty_weight)]
    if kind == "event":
        if line.event is None:
            raise ValueError("no event kind")
        return [row, kind, int(step), line.event, line.message or ""]
    return [row, kind, step]


def parse_part(data: bytes, start: int = 0) -> _Part:
    """The columns of `data`, whole lines of metrics.jsonl from byte `start` on."""
    lines, skipped = _decode(data)
    batches: list[_Line] = []
    entries: list[list] = []
    for line in lines:
        if line.kind == "batch":
            batches.append(line)
            continue
        try:
            entry = _entry(line, len(batches))
        except (ValueError, TypeError, OverflowError):
            skipped += 1
            continue
        if entry is not None:
            entries.append(entry)
    arrays, modes = _batch_arrays(batches)
    return _Part(start, start + len(data), arrays, modes, entries, skipped)


# -- the cache -----------------------------------------------------------------------------------------
def _crc_at(handle, start: int, end: int) -> int:
    handle.seek(start)
    return zlib.crc32(handle.read(end - start))


def _samples(handle, start: int, end: int) -> tuple[int, int]:
    return (_crc_at(handle, start, min(start + _SAMPLE, end)), _crc_at(handle, max(end - _SAMPLE, start), end))


def _segment_name(start: int, end: int) -> str:
    return f"{start:015d}-{end:015d}.npz"


def _segments(cache: Path) -> list[tuple[int, int, Path]]:
    out = []
    try:
        names = os.listdir(cache)
    except OSError:
        return []
    for name in names:
        stem, dot, suffix = name.partition(".")
        first, dash, second = stem.partition("-")
        if suffix == "npz" and dash and first.isdigit() and second.isdigit() and int(second) > int(first):
            out.append((int(first), int(second), cache / name))
    return sorted(out)


def _storable(array: np.ndarray) -> np.ndarray:
    # A float64 column whose values are all float32 values is stored in half the space.
    if array.dtype == np.float64:
        narrow = array.astype(np.float32)
        if np.array_equal(narrow.astype(np.float64), array, equal_nan=True):
            return narrow
    return array


def write_segment(run_dir: Path, part: _Part, handle=None) -> bool:
    """Cache `part` in the run's metrics.cache/ (atomically); False when it could not be written.
    `handle` is metrics.jsonl open for binary reading, if the caller has one."""
    cache = Path(run_dir) / CACHE_DIR
    own = handle is None
    try:
        if own:
            handle = open(Path(run_dir) / METRICS_FILE, "rb")
        try:
            head, tail = _samples(handle, part.start, part.end)
        finally:
            if own:
                handle.close()
        info = {"version": CACHE_VERSION, "start": part.start, "end": part.end, "head": head, "tail": tail,
                "rows": part.rows, "modes": part.modes, "entries": part.entries, "skipped": part.skipped}
        cache.mkdir(exist_ok=True)
        target = cache / _segment_name(part.start, part.end)
        tmp = cache / f".{target.name}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as out:
                np.savez(out, info=np.frombuffer(json.dumps(info).encode(), dtype=np.uint8),
                         **{name: _storable(array) for name, array in part.arrays.items()})
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except (OSError, ValueError):
        return False
    return True


def _load_segment(path: Path, start: int, end: int, handle) -> _Part | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            info = json.loads(npz["info"].tobytes())
            if (info.get("version") != CACHE_VERSION or info.get("start") != start or info.get("end") != end
                    or [info.get("head"), info.get("tail")] != list(_samples(handle, start, end))):
                return None
            arrays = {}
            for name in (*SCALAR_FIELDS, "mode", *MATRIX_FIELDS):
                array = npz[name]
                arrays[name] = array.astype(np.float64) if name in SCALAR_FIELDS else array
            if any(len(array) != info["rows"] for array in arrays.values()):
                return None
            return _Part(start, end, arrays, list(info["modes"]), info["entries"], int(info["skipped"]))
    except (OSError, ValueError, KeyError, TypeError, zlib.error, EOFError):
        return None


def _cached_plan(run_dir: Path, size: int, handle) -> tuple[list[tuple[int, int, Path]], list[Path]]:
    """The segments to read, in order, and the ones left over (covered by others, or stale), which
    may be removed. Gaps are allowed where a segment starts right after a newline: what a writer
    had not cached when it crashed is parsed, and the cache of the resumed log still counts."""
    segments = [segment for segment in _segments(Path(run_dir) / CACHE_DIR) if segment[1] <= size]
    plan: list[tuple[int, int, Path]] = []
    offset = 0
    while True:
        here = [segment for segment in segments if segment[0] == offset]
        if not here:
            later = sorted((s for s in segments if s[0] > offset), key=lambda s: (s[0], -s[1]))
            here = [s for s in later[:8] if _after_newline(handle, s[0])][:1]
        if not here:
            break
        segment = max(here, key=lambda s: s[1])
        plan.append(segment)
        offset = segment[1]
    chosen = {segment[2] for segment in plan}
    # A segment past the size read may have been written since: it is left alone.
    return plan, [path for _, end, path in segments if path not in chosen and end <= offset]


def _after_newline(handle, offset: int) -> bool:
    handle.seek(offset - 1)
    return handle.read(1) == b"\n"


# -- assembling parts ---------------------------------------------------------------------------------
class _Columns:
    """Growing output columns. Rows are copied in part by part, so that the parts never need to be
    held all at once; a resume marker truncates (or, rarely, compacts) what is there."""

    def __init__(self) -> None:
        self.n = 0
        self.capacity = 0
        self.arrays: dict[str, np.ndarray | None] = {}
        self.modes: list[str] = []
        self._mode_index: dict[str, int] = {}
        self.evals: list[list] = []  # [row, step, loss, perplexity]
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

    def add(self, part: _Part) -> None:
        self.skipped += part.skipped
        codes = np.array([self._mode_index.setdefault(m, len(self._mode_index)) for m in part.modes] or [0],
                         dtype=np.int16)
        self.modes = list(self._mode_index)
        copied = 0
        for entry in part.entries:
            row, kind = int(entry[0]), entry[1]
            if kind == "resumed":
                self._copy(part, codes, copied, row)
                copied = row
                self._resume(entry[2])
                continue
            at = self.n + row - copied
            if kind == "eval":
                self.evals.append([at, *entry[2:]])
            elif kind == "mode_change":
                self.mode_changes.append((at, ModeChange(*entry[2:])))
            else:
                self.events.append((at, RunEvent(*entry[2:])))
        self._copy(part, codes, copied, part.rows)

    def _copy(self, part: _Part, codes: np.ndarray, start: int, stop: int) -> None:
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

    def _resume(self, k: Any) -> None:
        """Today's apply_resumes: drop the batches and evaluations so far whose step is past k."""
        self.evals = [e for e in self.evals if e[1] <= k]
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
        self.events = [(int(new_rows[min(r, len(new_rows) - 1)]), e) for r, e in self.events]

    def result(self, widths: tuple[int, int, int] = (0, 0, 0)) -> RunColumns:
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
            event_row=np.array([r for r, _ in self.events], dtype=np.int64))


# -- reading -------------------------------------------------------------------------------------------
Progress = Callable[[int, int], None]  # (bytes read, bytes to read)
Cancel = Callable[[], bool]


def _check(cancel: Cancel | None) -> None:
    if cancel is not None and cancel():
        raise ReadCancelled()


class RunColumnsReader:
    """Reads a run's metrics.jsonl as columns, and then what is appended to it, read by read.

    Only complete lines are consumed: a line still being written (or torn by a crash) is left for
    the next read. `cache`: use metrics.cache/ and add to it (False reads the JSON only).

    The matrices keep one width from read to read, even while every batch so far had none of a
    kind (standard mode has no angles): `widths` (P * r, E + G, G), by default from meta.json's
    model settings, else from the first batch that has them."""

    def __init__(self, run_dir: Path, cache: bool = True, widths: tuple[int, int, int] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.widths = list(widths) if widths is not None else _widths_from_meta(self.run_dir)
        self.path = self.run_dir / METRICS_FILE
        self.cache = cache
        self.offset = 0  # bytes of metrics.jsonl consumed
        self.skipped_lines = 0  # complete lines that were not records, in everything read so far
        self.incomplete_tail = False  # bytes after the last newline
        self.cached_bytes = 0  # of the last full read, how much came from the cache
        self._carry = False

    def read(self, progress: Progress | None = None, cancel: Cancel | None = None) -> tuple[RunColumns, bool]:
        """The batches and records logged since the last read, and whether they replace everything
        returned before (the first read, or a resume marker superseded earlier records: the whole
        run is then returned as it now stands). Raises ReadCancelled when `cancel()` says so; the
        reader is then as it was before the call."""
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
            parts, end, tail = self._parse_from(handle, self.offset, size, progress, cancel, cache=False)
        if any(entry[1] == "resumed" for part in parts for entry in part.entries):
            return self._read_all(progress, cancel), True
        columns = _Columns()
        for part in parts:
            columns.add(part)
        self.offset, self.incomplete_tail = end, tail
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
        columns = _Columns()
        with handle:
            size = os.fstat(handle.fileno()).st_size
            plan, leftovers = _cached_plan(self.run_dir, size, handle) if self.cache else ([], [])
            for path in leftovers:
                _remove(path)
            offset = cached = 0
            for index, (start, end, path) in enumerate(plan):
                if start > offset:  # what no segment holds: parsed (and cached, if it is large)
                    for part, offset in self._parts(handle, offset, size, progress, cancel, True, columns, stop=start):
                        columns.add(part)
                _check(cancel)
                part = _load_segment(path, start, end, handle)
                if part is None:
                    for _s, _e, stale in plan[index:]:
                        _remove(stale)
                    break
                if not columns.capacity and part.rows:  # room for the whole run at once: growing copies it
                    columns.reserve(int(size / ((end - start) / part.rows) * 1.02) + 1024)
                columns.add(part)
                offset, cached = end, cached + end - start
                if progress is not None:
                    progress(offset, size)
            self.cached_bytes = cached
            end = offset
            for part, end in self._parts(handle, offset, size, progress, cancel, self.cache, columns):
                columns.add(part)
        self.offset, self.incomplete_tail = end, self._carry
        self.skipped_lines = columns.skipped
        return self._fitted(columns.result(self.widths))

    def _parse_from(self, handle, offset: int, size: int, progress, cancel, cache: bool):
        parts, end = [], offset
        for part, end in self._parts(handle, offset, size, progress, cancel, cache):
            parts.append(part)
        return parts, end, self._carry

    def _parts(self, handle, offset: int, size: int, progress, cancel, cache: bool, columns: _Columns | None = None,
               stop: int | None = None):
        """(part, consumed up to) for each chunk of complete lines from `offset` on (to `stop`, a
        line boundary, or the end); afterwards `_carry` says whether bytes after the last newline
        were left."""
        handle.seek(offset)
        carry = b""
        position = offset  # where `carry` starts
        self._carry = False
        while True:
            _check(cancel)
            want = CHUNK_BYTES if stop is None else min(CHUNK_BYTES, stop - position - len(carry))
            block = handle.read(want) if want > 0 else b""
            if not block:
                self._carry = bool(carry)
                return
            data = carry + block
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # one line longer than a chunk
                carry = data
                continue
            part = parse_part(data[:cut], position)
            if cache and cut >= MIN_CACHED_CHUNK:
                resume_at = handle.tell()
                write_segment(self.run_dir, part, handle)
                handle.seek(resume_at)
            if columns is not None and columns.capacity == 0 and part.rows:
                columns.reserve(part.rows + int((size - position - cut) / (cut / part.rows) * 1.02) + 1024)
            position += cut
            carry = data[cut:]
            if progress is not None:
                progress(position, max(size, position))
            yield part, position


def _widths_from_meta(run_dir: Path) -> list[int]:
    try:
        model = json.loads((run_dir / "meta.json").read_text(encoding="utf-8"))["settings"]["model"]
        experts, ghosts = int(model["num_experts"]), int(model["num_ghost_experts"])
        return [(experts + ghosts) * int(model["rotation_dimensions"]), experts + ghosts, ghosts]
    except (OSError, ValueError, KeyError, TypeError):
        return [0, 0, 0]


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def read_run_columns(run_dir: Path, progress: Progress | None = None, cancel: Cancel | None = None,
                     cache: bool = True, widths: tuple[int, int, int] | None = None) -> RunColumns:
    """The whole run as columns (see RunColumnsReader)."""
    return RunColumnsReader(run_dir, cache=cache, widths=widths).read(progress, cancel)[0]


def parse_columns(data: bytes) -> RunColumns:
    """Columns of metrics.jsonl text held in memory (complete lines; a torn last line is ignored)."""
    cut = data.rfind(b"\n") + 1
    columns = _Columns()
    columns.add(parse_part(data[:cut]))
    return columns.result()


class SegmentWriter:
    """The RunLog's side of the cache: the lines it appends, cached a few megabytes at a time.

    `start` is where in metrics.jsonl the next line will begin (a line boundary). Failing to write
    the cache never fails the run: it is only a cache, and the writer then stops trying."""

    def __init__(self, run_dir: Path, start: int, segment_bytes: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.start = start
        self.segment_bytes = SEGMENT_BYTES if segment_bytes is None else segment_bytes
        self._lines: list[bytes] = []
        self._size = 0
        self.enabled = True

    def add(self, line: bytes) -> None:
        if not self.enabled:
            return
        self._lines.append(line)
        self._size += len(line)
        if self._size >= self.segment_bytes:
            self.flush()

    def flush(self) -> None:
        if not self.enabled or not self._lines:
            return
        data = b"".join(self._lines)
        self._lines, self._size = [], 0
        try:
            part = parse_part(data, self.start)
        except Exception:  # noqa: BLE001 - a cache must never stop training
            self.enabled = False
            return
        self.start += len(data)
        if not write_segment(self.run_dir, part):
            self.enabled = False

    def drop(self) -> None:
        self._lines, self._size, self.enabled = [], 0, False

