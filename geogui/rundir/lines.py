"""metrics.jsonl lines decoded a chunk at a time into columns (`parse_part`), without a Python
object per batch: msgspec decodes a whole chunk into plain structs, then each field becomes one
numpy column.

Today's rules hold: a line that is not a readable record is skipped and counted, both line forms
(compact and long) read to the same values as `log_lines.record_from_json`, and a line the fast
decoder refuses but the standard library reads (a step written as 3.0, NaN) still counts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from operator import attrgetter

import msgspec
import numpy as np

from geogui.engine.log_lines import BATCH_LINE_NAMES, DEVICE_FLOAT32, record_from_json
from geogui.engine.metrics import BatchRecord, EvalRecord, LogRecord, ModeChange, RecordKind, RunEvent
from geogui.engine.samples import AccuracyRecord
from geogui.rundir.columns import SCALAR_FIELDS

_WIDENED = tuple(name for name in SCALAR_FIELDS if name in DEVICE_FLOAT32)
_INTEGRAL = ("step", "tokens_seen")
ROUTING_FIELDS = ("expert_utilization", "routing_entropy", "layer_overflow", "hidden_similarity")
# The kinds that become a part's entries (the rest, "finished" among them, are not kept).
ENTRY_KINDS = (RecordKind.EVAL, RecordKind.ACCURACY, RecordKind.MODE_CHANGE, RecordKind.EVENT, RecordKind.REWIND)

OptFloat = float | None
OptList = list[float | None] | None


class Line(msgspec.Struct):
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
    expert_utilization: list[list[float | None]] | None = None  # the routing numbers' long and short names
    util: OptList = None
    routing_entropy: OptList = None
    entropy: OptList = None
    layer_overflow: OptList = None
    overflow: OptList = None
    hidden_similarity: list[list[float | None]] | None = None
    hsim: OptList = None
    perplexity: OptFloat = None
    previous_mode: str | None = None
    previous_penalty_weight: OptFloat = None
    event: str | None = None
    message: str | None = None
    right: int | None = None  # an accuracy line's (`engine.samples.AccuracyRecord`)
    asked: int | None = None
    unparsed: int | None = None
    seconds: OptFloat = None


_CHUNK_DECODER = msgspec.json.Decoder(list[Line])
_LINE_DECODER = msgspec.json.Decoder(Line)


def _line_from_record(record: LogRecord) -> Line:
    """A line the fast decoder refused but today's reader accepts (say, a step written as 3.0),
    rebuilt from its typed record so that it goes through the same column code."""
    if isinstance(record, BatchRecord):
        angles = record.rotation_angles
        nested = None if angles is None else np.atleast_2d(angles).tolist()
        values = {name: getattr(record, name) for name in SCALAR_FIELDS}
        routing = {name: None if getattr(record, name) is None else getattr(record, name).tolist()
                   for name in ROUTING_FIELDS}
        return Line(kind=record.kind, mode=record.mode, rotation_angles=nested,
                    expert_load=record.expert_load.ravel().tolist(),
                    ghost_activation=record.ghost_activation.ravel().tolist(), **routing, **values)
    if isinstance(record, EvalRecord):
        return Line(kind=record.kind, step=record.step, loss=record.loss, perplexity=record.perplexity)
    if isinstance(record, ModeChange):
        return Line(kind=record.kind, step=record.step, mode=record.mode, penalty_weight=record.penalty_weight,
                    previous_mode=record.previous_mode, previous_penalty_weight=record.previous_penalty_weight)
    if isinstance(record, RunEvent):
        return Line(kind=record.kind, step=record.step, event=record.event, message=record.message)
    if isinstance(record, AccuracyRecord):
        return Line(kind=record.kind, step=record.step, mode=record.mode, right=record.right, asked=record.asked,
                    unparsed=record.unparsed, seconds=record.seconds)
    return Line(kind=record.kind)


def logged_record(data: dict) -> LogRecord | AccuracyRecord | None:
    """`log_lines.record_from_json`, and the accuracy lines (`engine.samples`, which the metrics module
    does not import) too."""
    if data.get("kind") == RecordKind.ACCURACY:
        return AccuracyRecord.from_json(data)
    return record_from_json(data)


def _slow_line(raw: bytes) -> Line | None:
    """One line by today's rules (stdlib json, record_from_json); None when it is not a record."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("kind") == RecordKind.REWIND:
        step = data.get("step")
        return Line(kind=RecordKind.REWIND, step=step) if isinstance(step, (int, float)) else None
    try:
        record = logged_record(data)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None
    return Line(kind=data.get("kind") if isinstance(data.get("kind"), str) else None) if record is None \
        else _line_from_record(record)


def decode_line(raw: bytes) -> Line | None:
    """One line (without its newline); None when it is not a record."""
    try:
        return _LINE_DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _slow_line(raw)


def _decode(data: bytes) -> tuple[list[Line], int]:
    """The complete lines in `data` (which ends with a newline), and how many were not records."""
    if not data:
        return [], 0
    try:  # one call for the whole chunk; the fallback only runs for a chunk with a bad line in it
        return _CHUNK_DECODER.decode(b"[" + data[:-1].replace(b"\n", b",") + b"]"), 0
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    lines, skipped = [], 0
    for raw in data[:-1].split(b"\n"):
        line = decode_line(raw)
        if line is None:
            skipped += 1
        else:
            lines.append(line)
    return lines, skipped


# -- a part: the columns of one byte range ------------------------------------------------------------
@dataclass
class Part:
    start: int
    end: int
    arrays: dict[str, np.ndarray]  # SCALAR_FIELDS, "mode", MATRIX_FIELDS
    modes: list[str]
    # (row, kind, values): eval (step, loss, perplexity), accuracy (step, mode, right, asked, unparsed,
    # seconds), mode_change (step, mode, weight, previous
    # mode, previous weight), event (step, kind, message), rewind (step,); row = batches before it
    entries: list[list]
    skipped: int

    @property
    def rows(self) -> int:
        return len(self.arrays["step"])


def _floats(values: list) -> np.ndarray:
    return np.array(values, dtype=np.float64) if values else np.zeros(0)


def _scalar(rows: list[Line], compact: np.ndarray, name: str) -> np.ndarray:
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


def _batch_arrays(rows: list[Line]) -> tuple[dict[str, np.ndarray], list[str]]:
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
    for name in ("expert_load", "ghost_activation", *ROUTING_FIELDS):
        short = BATCH_LINE_NAMES[name]
        arrays[name] = _matrix([getattr(r, short) if c else getattr(r, name) for r, c in zip(rows, compact.tolist())],
                               nested=name in ROUTING_FIELDS)  # long lines nest (L, E + G) and (P, P)
    return arrays, list(table)


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _entry(line: Line, row: int) -> list | None:
    """An evaluation, mode change, event or rewind as a part entry; None for other lines."""
    kind, step = line.kind, line.step
    if kind not in ENTRY_KINDS:
        return None
    if step is None:
        raise ValueError("no step")
    if kind == RecordKind.EVAL:
        return [row, kind, int(step), _nan(line.loss), _nan(line.perplexity)]
    if kind == RecordKind.ACCURACY:
        if line.right is None or line.asked is None or line.mode is None:
            raise ValueError("incomplete accuracy")
        return [row, kind, int(step), line.mode, int(line.right), int(line.asked), int(line.unparsed or 0),
                _nan(line.seconds)]
    if kind == RecordKind.MODE_CHANGE:
        if line.penalty_weight is None or line.previous_penalty_weight is None or line.mode is None \
                or line.previous_mode is None:
            raise ValueError("incomplete mode change")
        return [row, kind, int(step), line.mode, float(line.penalty_weight), line.previous_mode,
                float(line.previous_penalty_weight)]
    if kind == RecordKind.EVENT:
        if line.event is None:
            raise ValueError("no event kind")
        return [row, kind, int(step), line.event, line.message or ""]
    return [row, kind, step]


def parse_part(data: bytes, start: int = 0) -> Part:
    """The columns of `data`, whole lines of metrics.jsonl from byte `start` on."""
    lines, skipped = _decode(data)
    batches: list[Line] = []
    entries: list[list] = []
    for line in lines:
        if line.kind == RecordKind.BATCH:
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
    return Part(start, start + len(data), arrays, modes, entries, skipped)


