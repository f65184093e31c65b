"""A run directory read for the plots: its shape (presentations, angles, expert names), its records and
what was wrong with it. No Qt and no torch here: the GUI thread reads runs through this module.

A run is opened even when parts of it are damaged, and each problem becomes a one-line note: a
missing or corrupt meta.json (the shape then comes from the records), a torn last line of
metrics.jsonl (a crash mid-write, or a line still being written), lines that do not parse.

metrics.jsonl is read once, as columns (`reader.MetricsReader`), never as an object per batch: a
million-step run takes about 330 MB and opens from its cache in about a second. Reading takes a
progress callback and a cancel check, so the GUI can run `load_run` on a worker thread behind a
progress bar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from geogui.engine.metrics import LoggedRecord
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plotdata.smoothing import DEFAULT_WEIGHT
from geogui.rundir.columns import NO_WIDTHS, Cancel, Progress, RunColumns
from geogui.rundir.layout import META_FILE, METRICS_FILE, RunLogError
from geogui.rundir.meta import RunMeta, RunStatus, read_meta
from geogui.rundir.reader import MetricsReader, column_widths
from geogui.settings import ModelSettings


class RunShape(NamedTuple):
    """What the plots size themselves by (`PlotBoard.start_shaped`)."""

    presentations: int
    rotation_dimensions: int
    expert_names: tuple[str, ...] = ()
    # None where the settings are unknown (a run without meta.json)
    max_rotation: float | None = None  # the angles' bound
    saturation_threshold: float | None = None  # the overflow at which ghosts start to wake


def shape_of_model(model: ModelSettings) -> RunShape:
    return RunShape(model.presentations, model.rotation_dimensions, model.expert_names, model.max_rotation,
                    model.saturation_threshold)


def shape_from_meta(meta: RunMeta) -> RunShape:
    """The run's shape as its settings give it; ValueError when they have no usable model."""
    return shape_of_model(meta.model_settings())


def shape_from_columns(columns: RunColumns) -> RunShape:
    """The shape a run's batches imply (one presentation per expert), for a run without meta.json."""
    experts, width = columns.expert_load.shape[1], columns.rotation_angles.shape[1]
    if width and experts and width % experts == 0:
        return RunShape(experts, width // experts)
    return RunShape(experts, 0)


TORN_TAIL_NOTE = "the last line of metrics.jsonl is incomplete (a crash mid-write?); it was ignored"


@dataclass
class LoadedRun:
    path: Path
    meta: RunMeta | None  # None when meta.json is missing or corrupt
    status: RunStatus  # as in the Runs panel (UNREADABLE without a meta.json)
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
        return (self.meta.name if self.meta is not None else "") or self.path.name

    @property
    def total_steps(self) -> int | None:
        return None if self.meta is None else self.meta.planned_steps

    def series(self, smoothing: float = DEFAULT_WEIGHT) -> RunSeries:
        series = RunSeries(self.shape.presentations, self.shape.rotation_dimensions, smoothing)
        extend_columns = getattr(series, "extend_columns", None)  # the plot store, once it takes columns
        if extend_columns is not None:
            extend_columns(self.columns)
        else:
            series.extend_records(self.records)
        return series


def _read_columns(path: Path, widths: list[int], progress: Progress | None,
                  cancel: Cancel | None) -> tuple[RunColumns, list[str]]:
    """metrics.jsonl read once, as columns, and the notes on what in it could not be read."""
    reader = MetricsReader(path, widths=widths)
    try:
        columns, _ = reader.read(progress, cancel)
    except (OSError, MemoryError) as exc:
        raise RunLogError(f"{path / METRICS_FILE}: unreadable ({' '.join(str(exc).split())})") from None
    notes = [TORN_TAIL_NOTE] if reader.incomplete_tail else []
    if columns.skipped_lines:
        notes.append(f"{columns.skipped_lines} line(s) of metrics.jsonl are not readable records; they were skipped")
    return columns, notes


def load_run(path: Path, progress: Progress | None = None, cancel: Cancel | None = None) -> LoadedRun:
    """Read a run directory. Raises RunLogError (one line) only when there is nothing to show, and
    columns.ReadCancelled when `cancel()` said stop. `progress(bytes read, bytes to read)` is
    called between chunks (from the calling thread)."""
    path = Path(path)
    notes: list[str] = []
    try:
        meta: RunMeta | None = read_meta(path)
    except RunLogError as exc:
        meta = None
        notes.append(str(exc))
    shape: RunShape | None = None
    try:
        shape = shape_from_meta(meta) if meta is not None else None
    except ValueError:
        pass
    widths = column_widths(meta) if shape is not None else list(NO_WIDTHS)
    if (path / METRICS_FILE).is_file():
        columns, read_notes = _read_columns(path, widths, progress, cancel)
        notes += read_notes
    elif meta is None:
        raise RunLogError(notes[0])
    else:
        columns = RunColumns.empty()
    if shape is None:
        if meta is not None:
            notes.append(f"{path / META_FILE}: no usable model settings; the plot shapes come from the records")
        shape = shape_from_columns(columns)
    status = meta.effective_status() if meta is not None else RunStatus.UNREADABLE
    return LoadedRun(path, meta, status, shape, columns, notes)
