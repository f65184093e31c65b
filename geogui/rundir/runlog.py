"""The run directory: `meta.json` (settings, device, versions, times, status, mode changes) and
`metrics.jsonl` (one JSON object per event, appended and flushed as it goes).

metrics.jsonl is append-only, so a crash loses at most the line being written; meta.json is small
and replaced atomically (write a temporary file, then rename), so it is never half-written. Batch
lines are in the compact form (`log_lines.batch_line`); as the log grows, its columns are cached
every few megabytes in `metrics.cache/` (`segments.SegmentWriter`), so that a long run opens
without parsing its JSON again. The run directory is read through `meta.read_meta` and `reader`.

One writer per run directory: a RunLog holds an exclusive lock on the directory's `.lock` file for as
long as it is open (POSIX `flock`, which the OS releases when the process dies, even by kill -9), so
two app instances, or the app and `geogui-train`, can never append to the same run.
"""

from __future__ import annotations

import json
import math
import os
import platform
import secrets
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer per run is then up to the user
    fcntl = None

from geogui.engine.log_lines import batch_line
from geogui.engine.metrics import BatchRecord, LoggedRecord, ModeChange, Rewind, RunEvent, RunStarted, TrainerEvent
from geogui.engine.samples import SampleRecord
from geogui.rundir.layout import LOCK_FILE, META_FILE, METRICS_FILE, RunLogError
from geogui.rundir.meta import (
    Continuation,
    RunMeta,
    RunStatus,
    effective_status,
    read_meta,
    write_json_atomic,
    writer_closed,
    writer_opened,
)
from geogui.rundir.reader import read_lines, read_records, torn_tail
from geogui.rundir.samples import SamplesLog
from geogui.rundir.segments import SegmentWriter
from geogui.settings import Settings

# Names other modules import from here: the run directory's files, reading meta.json.
__all__ = ["LOCK_FILE", "META_FILE", "METRICS_FILE", "RunLog", "RunLogError", "effective_status", "new_run_name",
           "read_meta", "read_metrics", "read_run_records", "read_typed_records", "write_json_atomic"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict[str, str]:
    import numpy
    import torch

    from geogui import __version__

    return {"geogui": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "platform": platform.platform()}


def new_run_name(settings: Settings) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{settings.run.mode.value}-{secrets.token_hex(2)}"


def _new_meta(path: Path, settings: Settings) -> RunMeta:
    return RunMeta(
        name=path.name, status=RunStatus.RUNNING, started_at=_now(), ended_at=None,
        settings=json.loads(settings.model_dump_json()), versions=_versions(), argv=list(sys.argv), device=None,
        requested_device=settings.device.device, data_source=None, parameters=None, steps_done=0,
        last_loss=None, mode_changes=[], events=[], continuations=[])


class RunLog:
    def __init__(self, path: Path, settings: Settings, meta: RunMeta | None = None):
        """A new run directory at `path`, or, with `meta`, an existing one being continued."""
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_run(self.path)
        self.meta: RunMeta = meta if meta is not None else _new_meta(self.path, settings)
        # Who is writing, so that a reader can tell a live run from one whose process died.
        self._writer = secrets.token_hex(8)
        self.meta.status, self.meta.ended_at = RunStatus.RUNNING, None
        self.meta.pid, self.meta.host, self.meta.writer = os.getpid(), socket.gethostname(), self._writer
        writer_opened(self._writer)
        self._samples = SamplesLog(self.path)
        try:
            # No newline translation: the cache addresses metrics.jsonl by byte offset.
            self._metrics = open(self.path / METRICS_FILE, "a", encoding="utf-8", newline="\n")
            self._end_torn_line()
            self._save_meta()
        except BaseException:
            self._release()
            raise
        self._cache = SegmentWriter(self.path, os.fstat(self._metrics.fileno()).st_size)

    def _end_torn_line(self) -> None:
        # A crash can leave half a line at the end. Ending it keeps it one unreadable line on its own,
        # rather than glued to the first line this log appends (a rewind would be lost in it).
        if torn_tail(self.path):
            self._metrics.write("\n")
            self._metrics.flush()

    def _append(self, line: str) -> None:
        try:
            self._metrics.write(line)
            self._metrics.flush()
        except BaseException:
            self._cache.drop()  # what reached the file is unknown: offsets past here cannot be trusted
            raise
        self._cache.add(line.encode("utf-8"))

    @classmethod
    def reopen(cls, path: Path, settings: Settings, from_step: int) -> "RunLog":
        """Continue the run in `path` after its checkpoint at `from_step`.

        Records already logged past `from_step` stay in the file; a `Rewind` line tells readers
        (`reader`) that the continuation supersedes them."""
        meta = read_meta(path)
        meta.settings = json.loads(settings.model_dump_json())
        meta.continuations = [*meta.continuations, Continuation(from_step=from_step, at=_now())]
        log = cls(path, settings, meta)
        log._append(json.dumps(Rewind(from_step).to_json()) + "\n")
        log._samples.rewind(from_step)
        return log

    @classmethod
    def create(cls, settings: Settings, root: Path | None = None) -> "RunLog":
        """A new run directory under `root` (default: the user's runs directory)."""
        if root is None:
            from geogui.paths import runs_dir

            root = runs_dir()
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        for _ in range(100):  # two instances starting in the same second must not share a directory
            path = root / new_run_name(settings)
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return cls(path, settings)
        raise RunLogError(f"{root}: no free run name")

    def _save_meta(self) -> None:
        write_json_atomic(self.path / META_FILE, self.meta)

    def write(self, event: TrainerEvent) -> None:
        if isinstance(event, RunStarted):
            self.meta.device, self.meta.data_source = event.device, event.data_source
            self.meta.parameters, self.meta.total_steps = event.parameters, event.total_steps
            self.meta.heldout_prompt, self.meta.heldout_answer = event.heldout_prompt or None, event.heldout_answer
            self._save_meta()
            return
        if isinstance(event, SampleRecord):
            self._samples.append(event)
            return
        self._append((batch_line(event) if isinstance(event, BatchRecord) else json.dumps(event.to_json())) + "\n")
        if isinstance(event, BatchRecord):  # meta.json is written at the next event; readers take the log's tail
            self.meta.steps_done = event.step
            self.meta.last_loss = event.loss if math.isfinite(event.loss) else None
        elif isinstance(event, ModeChange):
            self.meta.mode_changes = [*self.meta.mode_changes, event]  # assigned, so that it is written
            self._save_meta()
        elif isinstance(event, RunEvent):
            self.meta.events = [*self.meta.events, event]
            self._save_meta()

    def close(self, status: RunStatus | str) -> None:
        """Flush the metrics, record the final status and release the directory; idempotent.

        Every part is attempted even when one fails (a full disk): the first OSError is raised after."""
        if self._metrics.closed:
            return
        errors: list[OSError] = []
        for part in (self._metrics.flush, lambda: os.fsync(self._metrics.fileno()), self._metrics.close,
                     self._samples.close):
            try:
                part()
            except OSError as exc:
                errors.append(exc)
        if errors:
            self._cache.drop()
        self._cache.flush()  # the rest of the log, so that the finished run opens from the cache alone
        if not self._metrics.closed:  # close() itself failed after a failed flush: drop the buffer
            try:
                self._metrics.close()
            except OSError:
                pass
        self.meta.status, self.meta.ended_at = RunStatus(status), _now()
        try:
            self._save_meta()
        except OSError as exc:
            errors.append(exc)
        self._release()
        if errors:
            raise errors[0]

    def record_failure(self, message: str) -> None:
        """Close the log as failed (if it is not closed yet) and write `message` into meta.json as
        the run's error: what a failed rank of a distributed run left to be read."""
        self.close(RunStatus.FAILED)
        self.meta.status, self.meta.error = RunStatus.FAILED, message
        self._save_meta()

    def _release(self) -> None:
        writer_closed(self._writer)
        if self._lock is not None:
            self._lock.close()  # closing the descriptor drops the flock
            self._lock = None

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(RunStatus.FAILED if exc_type else RunStatus.FINISHED)


def _lock_run(path: Path):
    """The open lock file, held exclusively; RunLogError when another process (or RunLog) holds it."""
    if fcntl is None:
        return None
    handle = open(path / LOCK_FILE, "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RunLogError(f"{path}: the run is being written by another process") from None
    except OSError:
        handle.close()
        raise
    return handle


# -- the readers' earlier names, for callers not moved to `reader` yet ------------------------------------
def read_metrics(path: Path) -> list[dict[str, Any]]:
    """reader.read_lines(path, rewind=False).lines: every line as the file has it."""
    return read_lines(path, rewind=False).lines


def read_run_records(path: Path) -> list[dict[str, Any]]:
    """reader.read_lines(path).lines: the lines as the run stands after its rewinds."""
    return read_lines(path).lines


def read_typed_records(path: Path) -> list[LoggedRecord]:
    """reader.read_records(path)."""
    return read_records(path)
