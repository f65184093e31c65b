"""A run directory read for the plots: its shape (presentations, angles, expert names), its records and
what was wrong with it. No Qt and no torch here: the GUI thread reads runs through this module.

A run is opened even when parts of it are damaged, and each problem becomes a one-line note: a
missing or corrupt meta.json (the shape then comes from the records), a torn last line of
metrics.jsonl (a crash mid-write, or a line still being written), lines that do not parse.

The records are read as columns (`run_columns`), never as an object per batch: a million-step run
takes about 330 MB and opens from its cache in about a second. Reading takes a progress callback
and a cancel check, so the GUI can run `load_run` on a worker thread behind a progress bar.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geogui.engine.metrics import BatchRecord, LoggedRecord
from geogui.rundir.columns import Cancel, Progress, RunColumns, RunColumnsReader
from geogui.rundir.runlog import METRICS_FILE, RunLogError, effective_status, read_meta
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plotdata.smoothing import DEFAULT_WEIGHT


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


def shape_from_columns(columns: RunColumns) -> RunShape:
    """The shape a run's batches imply (one presentation per expert), for a run without meta.json."""
    experts, width = columns.expert_load.shape[1], columns.rotation_angles.shape[1]
    if width and experts and width % experts == 0:
        return RunShape(experts, width // experts)
    return RunShape(experts, 0)


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
    columns: RunColumns
    notes: list[str] = field(default_factory=list)  # one line per problem found
    _records: list[LoggedRecord] | None = field(default=None, repr=False)

    @property
    def records(self) -> list[LoggedRecord]:
        """The run as typed records, one object per batch, made on first use: for code that does not
        take columns yet (it costs what the columns save)."""
        if self._records is None:
            self._records = self.columns.records(self.shape.presentations or None)
        return self._records

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
        extend_columns = getattr(series, "extend_columns", None)  # the plot store, once it takes columns
        if extend_columns is not None:
            extend_columns(self.columns)
        else:
            series.extend_records(self.records)
        return series


def load_run(path: Path, progress: Progress | None = None, cancel: Cancel | None = None) -> LoadedRun:
    """Read a run directory. Raises RunLogError (one line) only when there is nothing to show, and
    run_columns.ReadCancelled when `cancel()` said stop. `progress(bytes read, bytes to read)` is
    called between chunks (from the calling thread)."""
    path = Path(path)
    notes: list[str] = []
    try:
        meta: dict[str, Any] | None = read_meta(path)
    except RunLogError as exc:
        meta = None
        notes.append(str(exc))
    reader = RunColumnsReader(path)
    if not (path / METRICS_FILE).is_file():
        if meta is None:
            raise RunLogError(notes[0])
        columns = RunColumns.empty()
    else:
        try:
            columns, _ = reader.read(progress, cancel)
        except (OSError, MemoryError) as exc:
            raise RunLogError(f"{path / METRICS_FILE}: unreadable ({' '.join(str(exc).split())})") from None
    if reader.incomplete_tail:
        notes.append(TORN_TAIL_NOTE)
    if columns.skipped_lines:
        notes.append(f"{columns.skipped_lines} line(s) of metrics.jsonl are not readable records; they were skipped")
    try:
        shape = shape_from_meta(meta) if meta is not None else shape_from_columns(columns)
    except (KeyError, TypeError, ValueError):
        notes.append(f"{path / 'meta.json'}: no usable model settings; the plot shapes come from the records")
        shape = shape_from_columns(columns)
    status = effective_status(meta) if meta is not None else "unreadable"
    return LoadedRun(path, meta, status, shape, columns, notes)
