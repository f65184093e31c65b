"""How each record is written as one metrics.jsonl line and read back (`record_from_json`).

A batch (`batch_line`): an overnight run logs a million batches, so the line is compact: at the
default model about 755 bytes in standard, 1,130 in geometric_fast (angles) and 1,255 in geometric
(the presentations' similarity), about half the long form's:
- every float is the shortest decimal that reads back as the same float32. The device computes the
  loss terms and the angles in float32 (`DEVICE_FLOAT32`), so for them nothing is lost: reading a
  line back (`normalize_line`) gives exactly the float64 the trainer had. The host's own values
  (learning rates, durations, epoch, loads, activations, rates, memory) keep 7 significant digits
  (relative error under 6e-8) and read back as the decimal written: more than a plot, the status
  bar or TensorBoard (which stores float32) can show. A float with an integral value is written as
  an integer ("0", not "0.0");
- the clock, `wall_s`, is the exception: it grows all run long, so it keeps microseconds instead of
  relative precision;
- no spaces after separators; the longest names are shortened (`BATCH_LINE_NAMES`: the TensorBoard
  tags' words) and the angles are one flat, presentation-major list of P * r values (P is the
  length of `loads`: one presentation per expert); the per-layer routing numbers are flat too,
  layer-major (`util`: L * (E + G); `hsim`: P * P), and null when the step had none;
- the routing numbers (`ROUNDED`: utilization, entropy, overflow, the presentations' similarity)
  are rounded to 3 decimals: a heatmap cell or a curve shows no more, and it keeps the line short.
Lines written before this format (long names, nested angles, full float64 digits) still read the
same, and a line in the compact form is told apart by its `loads` field.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from typing import Any

import numpy as np

from geogui.engine.metrics import (BatchRecord, EvalRecord, LogRecord, ModeChange, RecordKind, Rewind, RunEvent,
                                   RunFinished)

# BatchRecord field -> name in a compact batch line (fields not listed keep their name).
BATCH_LINE_NAMES = {
    "batch_time_s": "batch_s", "data_time_s": "data_s", "lr_rotation": "lr_rot", "rotation_angles": "angles",
    "expert_load": "loads", "ghost_activation": "ghosts", "memory_bytes": "mem_bytes",
    "driver_memory_bytes": "driver_bytes", "wall_time_s": "wall_s", "expert_utilization": "util",
    "routing_entropy": "entropy", "layer_overflow": "overflow", "hidden_similarity": "hsim",
}
COMPACT_MARKER = "loads"  # present in every compact batch line, in no line of the older form
INT_FIELDS = ("step", "tokens_seen")
CLOCK_FIELDS = ("wall_time_s",)  # written to the microsecond rather than to float32 precision
# Computed in float32 on the device: a compact line's decimal widens back to the exact value.
DEVICE_FLOAT32 = ("loss", "task_loss", "aux_loss", "penalty", "orthogonality", "specialization", "rotation_angles")
_LINE_ORDER = ("step", "epoch", "mode", "penalty_weight", "batch_time_s", "data_time_s", "loss", "task_loss",
               "aux_loss", "penalty", "orthogonality", "specialization", "lr_model", "lr_rotation", "saturation",
               "tokens_per_s", "tokens_seen", "memory_bytes", "driver_memory_bytes", "wall_time_s", "expert_load",
               "ghost_activation", "rotation_angles", "expert_utilization", "routing_entropy", "layer_overflow",
               "hidden_similarity")
# The matrices of a batch line, in line order; all but the first two may be absent (null).
ARRAY_FIELDS = ("expert_load", "ghost_activation", "rotation_angles", "expert_utilization", "routing_entropy",
                "layer_overflow", "hidden_similarity")
OPTIONAL_ARRAYS = ARRAY_FIELDS[2:]
ROUNDED = ("expert_utilization", "routing_entropy", "layer_overflow", "hidden_similarity")
ROUTING_DECIMALS = 3
# The matrices kept nested in the long form, with the width of a row: (P, r), (L, E + G), (P, P).
NESTED = ("rotation_angles", "expert_utilization", "hidden_similarity")
_LONG_NAMES = {short: long for long, short in BATCH_LINE_NAMES.items()}


_SCALARS = tuple(name for name in _LINE_ORDER if name not in (*INT_FIELDS, *CLOCK_FIELDS, "mode", *ARRAY_FIELDS))
_NOT_FINITE = ("nan", "inf", "-inf")


def _shortest(values: np.ndarray) -> list[float | int | None]:
    """Each value as the shortest decimal that reads back as the same float32 (one numpy call for
    them all); integral values as ints; None for what is not finite."""
    out: list[float | int | None] = []
    for text, value in zip(values.astype(np.float32).astype(str).tolist(), values.tolist()):
        if text in _NOT_FINITE:  # finite beyond float32's range keeps its float64 rather than become inf
            out.append(value if math.isfinite(value) else None)
            continue
        short = float(text)
        out.append(int(short) if short.is_integer() and abs(short) < 1e15 else short)
    return out


def batch_line(record: BatchRecord) -> str:
    """The record as one compact metrics.jsonl line (without the newline); see the module docstring."""
    arrays = []
    for name in ARRAY_FIELDS:
        value = getattr(record, name)
        array = np.zeros(0) if value is None else np.asarray(value, dtype=np.float64).ravel()
        arrays.append(np.round(array, ROUTING_DECIMALS) if name in ROUNDED else array)
    scalars = np.array([getattr(record, name) for name in _SCALARS], dtype=np.float64)
    values = _shortest(np.concatenate([scalars, *arrays]))
    shorts = dict(zip(_SCALARS, values))
    out: dict[str, Any] = {"kind": RecordKind.BATCH.value}
    cut = len(_SCALARS)
    for name in _LINE_ORDER:
        key = BATCH_LINE_NAMES.get(name, name)
        if name in INT_FIELDS:
            out[key] = int(getattr(record, name))
        elif name == "mode":
            out[key] = str(record.mode)
        elif name in CLOCK_FIELDS:
            value = float(getattr(record, name))
            out[key] = round(value, 6) if math.isfinite(value) else None
        elif name in shorts:
            out[key] = shorts[name]
        else:
            size = len(arrays[ARRAY_FIELDS.index(name)])
            out[key] = None if name in OPTIONAL_ARRAYS and getattr(record, name) is None else values[cut:cut + size]
            cut += size
    return json.dumps(out, separators=(",", ":"))


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _widen(value: Any) -> Any:
    # The float64 of the float32 a compact line's decimal stands for: the trainer's own value.
    if value is None or abs(value) > _FLOAT32_MAX:  # beyond float32: written as a float64 (_short_float)
        return None if value is None else float(value)
    return float(np.float32(value))


def _as_float(value: Any) -> Any:
    return None if value is None else float(value)


def normalize_line(data: dict[str, Any]) -> dict[str, Any]:
    """A metrics.jsonl line as the long-form dict `BatchRecord.to_json` writes: a compact batch line
    gets the long names, nested matrices (`NESTED`), floats (not integers) and the device's values widened
    back to their float32; every other line is returned as it is."""
    if data.get("kind") != RecordKind.BATCH or COMPACT_MARKER not in data:
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = _LONG_NAMES.get(key, key)
        convert = _widen if name in DEVICE_FLOAT32 else _as_float
        if name in INT_FIELDS or isinstance(value, (str, bool)) or name == "kind":
            out[name] = value
        elif isinstance(value, list):
            out[name] = [convert(v) for v in value]
        elif isinstance(value, (int, float)):
            out[name] = convert(value)
        else:
            out[name] = value
    loads = out.get("expert_load")
    for name in NESTED:
        flat = out.get(name)
        if not flat or not loads or not isinstance(flat[0], (int, float, type(None))):
            continue
        # (P, r) and (P, P) have P = len(loads) rows; (L, E + G) has rows of len(loads)
        width = len(loads) if name == "expert_utilization" else len(flat) // len(loads)
        if width and len(flat) % width == 0:
            out[name] = [flat[i:i + width] for i in range(0, len(flat), width)]
    return out


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _array(value: Any) -> np.ndarray:
    return np.array([[_float(v) for v in row] for row in value] if value and isinstance(value[0], list)
                    else [_float(v) for v in (value or [])], dtype=np.float64)


def _batch_from_json(data: dict[str, Any]) -> BatchRecord:
    values = {}
    for f in fields(BatchRecord):
        raw = data.get(f.name)
        if f.name in INT_FIELDS:
            values[f.name] = int(raw or 0)
        elif f.name == "mode":
            values[f.name] = str(raw)
        elif f.name in OPTIONAL_ARRAYS:
            values[f.name] = None if raw is None else _array(raw)
        elif f.name in ARRAY_FIELDS:
            values[f.name] = _array(raw)
        else:
            values[f.name] = _float(raw)
    return BatchRecord(**values)


def _event_from_json(data: dict[str, Any]) -> RunEvent:
    event = data["event"]
    if not isinstance(event, str):
        raise TypeError(f"an event's kind is a string, not {event!r}")
    return RunEvent(int(data["step"]), event, data.get("message", ""))


_FROM_JSON = {
    RecordKind.BATCH: _batch_from_json,
    RecordKind.EVAL: lambda data: EvalRecord(int(data["step"]), _float(data.get("loss")),
                                             _float(data.get("perplexity"))),
    RecordKind.MODE_CHANGE: lambda data: ModeChange(int(data["step"]), data["mode"], float(data["penalty_weight"]),
                                                    data["previous_mode"], float(data["previous_penalty_weight"])),
    RecordKind.EVENT: _event_from_json,
    RecordKind.REWIND: lambda data: Rewind(int(data["step"])),
    RecordKind.FINISHED: lambda data: RunFinished(int(data["step"]), str(data.get("status"))),
}


def record_from_json(data: dict[str, Any]) -> LogRecord | None:
    """The typed record for one metrics.jsonl line (None for a line of a kind no record has).

    A value written as null (it was not finite) comes back as NaN, never as 0. Compact batch lines
    and the older long form both read (`normalize_line`). A line that claims a kind but lacks its
    fields raises KeyError, TypeError or ValueError. Accuracy lines: `AccuracyRecord.from_json`."""
    data = normalize_line(data)
    kind = data.get("kind")
    reader = _FROM_JSON.get(kind) if isinstance(kind, str) else None
    return None if reader is None else reader(data)
