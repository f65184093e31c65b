"""The run directory: `meta.json` (settings, device, versions, times, status, mode changes) and
`metrics.jsonl` (one JSON object per event, appended and flushed as it goes).

metrics.jsonl is append-only, so a crash loses at most the line being written; meta.json is small
and replaced atomically (write a temporary file, then rename), so it is never half-written. Batch
lines are in the compact form (`metrics.batch_line`); as the log grows, its columns are cached
every few megabytes in `metrics.cache/` (`run_columns.SegmentWriter`), so that a long run opens
without parsing its JSON again.

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

from geogui.atomic_write import atomic_write
from geogui.engine.metrics import BatchRecord, ModeChange, RunEvent, RunStarted, TrainerEvent, batch_line, normalize_line
from geogui.settings import Settings

META_FILE = "meta.json"
METRICS_FILE = "metrics.jsonl"
LOCK_FILE = ".lock"
# The `writer` tokens of the RunLogs open in this process: a run this process wrote and no longer
# holds open (its log could not be closed, on a full disk) is not running, although the pid lives.
_open_writers: set[str] = set()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json_atomic(path: Path, data: Any) -> None:
    with atomic_write(path) as handle:  # a full disk keeps the old file, never half a new one
        json.dump(data, handle, indent=2)


def _versions() -> dict[str, str]:
    import numpy
    import torch

    from geogui import __version__

    return {"geogui": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "platform": platform.platform()}


def new_run_name(settings: Settings) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{settings.run.mode.value}-{secrets.token_hex(2)}"


class RunLog:
    def __init__(self, path: Path, settings: Settings, meta: dict[str, Any] | None = None):
        """A new run directory at `path`, or, with `meta`, an existing one being continued."""
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_run(self.path)
        self.meta: dict[str, Any] = meta or {
            "name": self.path.name, "status": "running", "started_at": _now(), "ended_at": None,
            "settings": json.loads(settings.model_dump_json()), "versions": _versions(),
            "argv": sys.argv, "device": None, "requested_device": settings.device.device,
            "data_source": None, "parameters": None, "steps_done": 0, "last_loss": None,
            "mode_changes": [], "events": [], "resumes": [],
        }
        # Who is writing, so that a reader can tell a live run from one whose process died.
        self._writer = secrets.token_hex(8)
        self.meta.update(status="running", ended_at=None, pid=os.getpid(), host=socket.gethostname(),
                         writer=self._writer)
        _open_writers.add(self._writer)
        try:
            # No newline translation: the cache addresses metrics.jsonl by byte offset.
            self._metrics = open(self.path / METRICS_FILE, "a", encoding="utf-8", newline="\n")
            self._end_torn_line()
            self._save_meta()
        except BaseException:
            self._release()
            raise
        from geogui.rundir.columns import SegmentWriter

        self._cache = SegmentWriter(self.path, os.fstat(self._metrics.fileno()).st_size)

    def _end_torn_line(self) -> None:
        # A crash can leave half a line at the end. Ending it keeps it one unreadable line on its own,
        # rather than glued to the first line this log appends (a resume marker would be lost in it).
        with open(self.path / METRICS_FILE, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return
            handle.seek(-1, os.SEEK_END)
            torn = handle.read(1) != b"\n"
        if torn:
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

        Records already logged past `from_step` stay in the file; a `resumed` marker line tells
        readers (`read_run_records`) that the continuation supersedes them."""
        meta = read_meta(path)
        meta["settings"] = json.loads(settings.model_dump_json())
        meta.setdefault("resumes", []).append({"from_step": from_step, "at": _now()})
        log = cls(path, settings, meta)
        log._append(json.dumps({"kind": "resumed", "step": from_step}) + "\n")
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
            self.meta.update(device=event.device, data_source=event.data_source, parameters=event.parameters,
                             total_steps=event.total_steps)
            self._save_meta()
            return
        self._append((batch_line(event) if isinstance(event, BatchRecord) else json.dumps(event.to_json())) + "\n")
        if isinstance(event, BatchRecord):
            self.meta["steps_done"] = event.step
            self.meta["last_loss"] = event.loss if math.isfinite(event.loss) else None
        elif isinstance(event, ModeChange):
            self.meta["mode_changes"].append(event.to_json())
            self._save_meta()
        elif isinstance(event, RunEvent):
            self.meta["events"].append(event.to_json())
            self._save_meta()

    def close(self, status: str) -> None:
        """Flush the metrics, record the final status and release the directory; idempotent.

        Every part is attempted even when one fails (a full disk): the first OSError is raised after."""
        if self._metrics.closed:
            return
        errors: list[OSError] = []
        for part in (self._metrics.flush, lambda: os.fsync(self._metrics.fileno()), self._metrics.close):
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
        self.meta.update(status=status, ended_at=_now())
        try:
            self._save_meta()
        except OSError as exc:
            errors.append(exc)
        self._release()
        if errors:
            raise errors[0]

    def _release(self) -> None:
        _open_writers.discard(self._writer)
        if self._lock is not None:
            self._lock.close()  # closing the descriptor drops the flock
            self._lock = None

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close("failed" if exc_type else "finished")


class RunLogError(ValueError):
    """A run directory that cannot be read; the message names the file and the problem."""


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


def read_meta(path: Path) -> dict[str, Any]:
    file = Path(path) / META_FILE
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunLogError(f"{file}: missing; is this a geogui run directory?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunLogError(f"{file}: unreadable ({exc})") from None
    if not isinstance(meta, dict) or "settings" not in meta:
        raise RunLogError(f"{file}: not a geogui run description")
    return meta


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def effective_status(meta: dict[str, Any]) -> str:
    """The recorded status, except that a "running" run whose process is gone is "crashed"."""
    status = meta.get("status", "crashed")
    if status == "running" and meta.get("host") == socket.gethostname():
        pid = meta.get("pid")
        if pid == os.getpid() and "writer" in meta:
            return "running" if meta["writer"] in _open_writers else "crashed"
        if not isinstance(pid, int) or not _pid_alive(pid):
            return "crashed"
    return status


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a run's metrics.jsonl (a torn last line from a crash is skipped), batch
    lines in the long form whichever form they were written in (`metrics.normalize_line`)."""
    import msgspec

    records = []
    with open(Path(path) / METRICS_FILE, encoding="utf-8") as handle:
        for line in handle:
            try:
                data = msgspec.json.decode(line)
            except msgspec.DecodeError:
                try:  # the standard library also reads NaN and Infinity
                    data = json.loads(line)
                except json.JSONDecodeError:
                    continue
            records.append(normalize_line(data) if isinstance(data, dict) else data)
    return records


def read_run_records(path: Path) -> list[dict[str, Any]]:
    """The run's records as they stand after every resume: a `resumed` marker at step k drops the
    earlier batch and eval records past k, which the continuation trained again."""
    return apply_resumes(read_metrics(path))


def apply_resumes(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop the records that each `resumed` marker supersedes, and the markers themselves."""
    records: list[dict[str, Any]] = []
    for record in lines:
        if record.get("kind") == "resumed":
            k = record["step"]
            records = [r for r in records if r.get("kind") not in ("batch", "eval") or r["step"] <= k]
        else:
            records.append(record)
    return records


def read_typed_records(path: Path) -> list:
    """read_run_records as the engine's typed records (BatchRecord, EvalRecord, ModeChange, RunEvent)."""
    from geogui.engine.metrics import record_from_json

    return [r for r in map(record_from_json, read_run_records(path)) if r is not None]
