"""Past and live runs on disk: list them, rename or delete them, and follow one as it grows.

Qt-free: the app's Runs panel and "Open run…" read through this module.

A run's meta.json is written at every event, not at every batch, so for a run being written (or
one whose writer died) its step count and last loss come from the end of metrics.jsonl instead
(`reader.last_logged`: the last few kilobytes of the file, not the whole log).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from geogui.engine.metrics import LoggedRecord
from geogui.rundir.columns import Cancel, Progress, RunColumns
from geogui.rundir.layout import META_FILE, METRICS_FILE, RunLogError
from geogui.rundir.meta import RunMeta, RunStatus, read_meta, write_meta
from geogui.rundir.reader import MetricsReader, last_logged

# Statuses whose meta.json may lag behind the log: its writer is alive, or died before closing it.
_STALE_META = (RunStatus.RUNNING, RunStatus.CRASHED)


@dataclass(frozen=True)
class RunInfo:
    path: Path
    name: str
    status: RunStatus
    modes: tuple[str, ...]  # in the order they were used
    steps: int
    last_loss: float | None
    started_at: str
    problem: str | None = None  # why the run could not be read, when status is UNREADABLE

    @property
    def date(self) -> str:
        try:
            return datetime.fromisoformat(self.started_at).astimezone().strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return self.started_at


def _progress(path: Path, meta: RunMeta, status: RunStatus) -> tuple[int, float | None]:
    """The run's step count and last loss: meta.json's, or the log's where meta.json may lag."""
    if status in _STALE_META:
        last = last_logged(path)
        if last is not None:
            return last.step, last.loss
    return meta.steps_done, meta.last_loss


def run_info(path: Path) -> RunInfo:
    path = Path(path)
    try:
        meta = read_meta(path)
    except RunLogError as exc:
        return RunInfo(path, path.name, RunStatus.UNREADABLE, (), 0, None, "", str(exc))
    status = meta.effective_status()
    steps, loss = _progress(path, meta, status)
    return RunInfo(path, meta.name or path.name, status, meta.modes, steps, loss, meta.started_at)


def list_runs(root: Path) -> list[RunInfo]:
    """Every run directory under `root`, newest first. Unreadable ones are listed, with the reason."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [run_info(child) for child in root.iterdir() if child.is_dir() and (
        (child / META_FILE).exists() or (child / METRICS_FILE).exists())]
    return sorted(runs, key=lambda run: (run.started_at, run.name), reverse=True)


def _refuse_if_live(path: Path) -> None:
    try:
        status = read_meta(path).effective_status()
    except RunLogError:
        return  # a run without a readable meta.json has no writer to protect
    if status is RunStatus.RUNNING:
        raise RunLogError(f"{path}: the run is still being written")


def delete_run(path: Path) -> None:
    path = Path(path)
    _refuse_if_live(path)
    if not ((path / META_FILE).exists() or (path / METRICS_FILE).exists()):
        raise RunLogError(f"{path}: not a run directory; not deleting it")
    shutil.rmtree(path)


def rename_run(path: Path, new_name: str) -> Path:
    path = Path(path)
    new_name = new_name.strip()
    if not new_name or "/" in new_name or "\\" in new_name or new_name in (".", ".."):
        raise RunLogError(f"{new_name!r} is not a usable run name")
    target = path.with_name(new_name)
    if target.exists():
        raise RunLogError(f"{target}: a run with that name exists")
    _refuse_if_live(path)
    path.rename(target)
    try:
        meta = read_meta(target)
        meta.name = new_name
        write_meta(target, meta)
    except RunLogError:
        pass  # a run without a readable meta.json keeps its records; the directory name is enough
    return target


class MetricsTail:
    """Reads a run's metrics.jsonl incrementally, for a run that another process is still writing.

    Only complete lines are consumed: a line still being written is left for the next poll. A
    rewind means earlier records were superseded; `poll` then says so (`reset`) and returns the
    whole run again as it now stands. `poll_columns` is the same as columns, which is what a long
    run should be followed with: `poll` makes an object per batch."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / METRICS_FILE
        self.reader = MetricsReader(run_dir)
        self._delivered = False  # whether a poll returned anything (before that, nothing is to be reset)

    @property
    def skipped_lines(self) -> int:  # complete lines that were not records
        return self.reader.skipped_lines

    @property
    def incomplete_tail(self) -> bool:  # bytes after the last newline: a line being written, or torn by a crash
        return self.reader.incomplete_tail

    def poll_columns(self, progress: Progress | None = None, cancel: Cancel | None = None) -> tuple[RunColumns, bool]:
        """New complete batches and records since the last poll, and whether they replace all before."""
        columns, reset = self.reader.read(progress, cancel)
        reset = reset and self._delivered
        self._delivered = self._delivered or bool(len(columns) or len(columns.eval_step) or columns.mode_changes
                                                  or columns.events)
        return columns, reset

    def poll(self) -> tuple[list[LoggedRecord], bool]:
        """New complete records since the last poll, and whether the caller must start over with them."""
        columns, reset = self.poll_columns()
        return columns.records(), reset
