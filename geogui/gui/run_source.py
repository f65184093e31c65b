"""A run directory read for the plots: its shape (presentations, angles, expert names), its records and
what was wrong with it. No Qt and no torch here: the GUI thread reads runs through this module.

A run is opened even when parts of it are damaged, and each problem becomes a one-line note: a
missing or corrupt meta.json (the shape then comes from the records), a torn last line of
metrics.jsonl (a crash mid-write, or a line still being written), lines that do not parse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geogui.engine.metrics import BatchRecord, LoggedRecord
from geogui.engine.runlog import METRICS_FILE, RunLogError, effective_status, read_meta, read_typed_records
from geogui.gui.run_series import RunSeries
from geogui.gui.smoothing import DEFAULT_WEIGHT


@dataclass(frozen=True)
class RunShape:
    presentations: int
    rotation_dimensions: int
    expert_names: tuple[str, ...] = ()


def shape_from_meta(meta: dict[str, Any]) -> RunShape:
    model = meta["settings"]["model"]
    experts, ghosts = int(model["num_experts"]), int(model["num_ghost_experts"])
    names = tuple(f"E{i}" for i in range(experts)) + tuple(f"G{i}" for i in range(ghosts))
    return RunShape(experts + ghosts, int(model["rotation_dimensions"]), names)


def shape_from_records(records: list[LoggedRecord]) -> RunShape:
    """The shape a run's batches imply, for a run whose meta.json cannot be read."""
    batches = [r for r in records if isinstance(r, BatchRecord)]
    with_angles = next((r for r in batches if r.rotation_angles is not None and r.rotation_angles.ndim == 2), None)
    if with_angles is not None:
        return RunShape(*with_angles.rotation_angles.shape)
    return RunShape(len(batches[0].expert_load) if batches else 0, 0)


def torn_tail(run_dir: Path) -> bool:
    """Whether metrics.jsonl ends in the middle of a line."""
    try:
        with open(Path(run_dir) / METRICS_FILE, "rb") as handle:
            handle.seek(0, 2)
            if handle.tell() == 0:
                return False
            handle.seek(-1, 2)
            return handle.read(1) != b"\n"
    except OSError:
        return False


def count_bad_lines(run_dir: Path) -> int:
    """Complete lines of metrics.jsonl that are not JSON (the torn last line is not counted)."""
    bad = 0
    try:
        with open(Path(run_dir) / METRICS_FILE, "rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    break
                try:
                    json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    bad += 1
    except OSError:
        pass
    return bad


TORN_TAIL_NOTE = "the last line of metrics.jsonl is incomplete (a crash mid-write?); it was ignored"


@dataclass
class LoadedRun:
    path: Path
    meta: dict[str, Any] | None  # None when meta.json is missing or corrupt
    status: str  # as in the Runs panel: running | finished | stopped | failed | crashed | unreadable
    shape: RunShape
    records: list[LoggedRecord]
    notes: list[str] = field(default_factory=list)  # one line per problem found

    @property
    def name(self) -> str:
        return (self.meta or {}).get("name") or self.path.name

    @property
    def total_steps(self) -> int | None:
        if self.meta is None:
            return None
        return self.meta.get("total_steps") or self.meta["settings"]["run"].get("steps")

    def series(self, smoothing: float = DEFAULT_WEIGHT) -> RunSeries:
        series = RunSeries(self.shape.presentations, self.shape.rotation_dimensions, smoothing)
        series.extend_records(self.records)
        return series


def load_run(path: Path) -> LoadedRun:
    """Read a run directory. Raises RunLogError (one line) only when there is nothing to show."""
    path = Path(path)
    notes: list[str] = []
    try:
        meta: dict[str, Any] | None = read_meta(path)
    except RunLogError as exc:
        meta = None
        notes.append(str(exc))
    if not (path / METRICS_FILE).is_file():
        if meta is None:
            raise RunLogError(notes[0])
        records: list[LoggedRecord] = []
    else:
        try:
            records = read_typed_records(path)
        except (OSError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RunLogError(f"{path / METRICS_FILE}: unreadable ({' '.join(str(exc).split())})") from None
    if torn_tail(path):
        notes.append(TORN_TAIL_NOTE)
    bad = count_bad_lines(path)
    if bad:
        notes.append(f"{bad} line(s) of metrics.jsonl are not JSON; they were skipped")
    try:
        shape = shape_from_meta(meta) if meta is not None else shape_from_records(records)
    except (KeyError, TypeError, ValueError):
        notes.append(f"{path / 'meta.json'}: no usable model settings; the plot shapes come from the records")
        shape = shape_from_records(records)
    status = effective_status(meta) if meta is not None else "unreadable"
    return LoadedRun(path, meta, status, shape, records, notes)
