"""Past and live runs on disk: list them, rename or delete them, and follow one as it grows.

Qt-free: the app's Runs panel and "Open run…" read through this module.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from geogui.engine.metrics import LoggedRecord, record_from_json
from geogui.engine.runlog import (
    META_FILE,
    METRICS_FILE,
    RunLogError,
    apply_resumes,
    effective_status,
    read_meta,
    write_json_atomic,
)


@dataclass(frozen=True)
class RunInfo:
    path: Path
    name: str
    status: str  # running | finished | stopped | failed | crashed | unreadable
    modes: tuple[str, ...]  # in the order they were used
    steps: int
    last_loss: float | None
    started_at: str
    problem: str | None = None  # why the run could not be read, when status is "unreadable"

    @property
    def date(self) -> str:
        try:
            return datetime.fromisoformat(self.started_at).astimezone().strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return self.started_at


def run_info(path: Path) -> RunInfo:
    path = Path(path)
    try:
        meta = read_meta(path)
    except RunLogError as exc:
        return RunInfo(path, path.name, "unreadable", (), 0, None, "", str(exc))
    modes = [meta["settings"]["run"]["mode"]]
    for change in meta.get("mode_changes", []):
        if change["mode"] not in modes:
            modes.append(change["mode"])
    return RunInfo(path, meta.get("name", path.name), effective_status(meta), tuple(modes),
                   int(meta.get("steps_done") or 0), meta.get("last_loss"), meta.get("started_at", ""))


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
        if effective_status(read_meta(path)) == "running":
            raise RunLogError(f"{path}: the run is still being written")
    except RunLogError as exc:
        if "still being written" in str(exc):
            raise


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
        meta["name"] = new_name
        write_json_atomic(target / META_FILE, meta)
    except RunLogError:
        pass  # a run without a readable meta.json keeps its records; the directory name is enough
    return target


class MetricsTail:
    """Reads a run's metrics.jsonl incrementally, for a run that another process is still writing.

    Only complete lines are consumed: a line still being written is left for the next poll. A
    `resumed` marker means earlier records were superseded; `poll` then says so (`reset`) and returns
    the whole run again as it now stands."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / METRICS_FILE
        self._offset = 0
        self.skipped_lines = 0  # complete lines that did not parse
        self.incomplete_tail = False  # bytes after the last newline: a line being written, or torn by a crash

    def poll(self) -> tuple[list[LoggedRecord], bool]:
        """New complete records since the last poll, and whether the caller must start over with them."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
                end = chunk.rfind(b"\n")
                self.incomplete_tail = len(chunk) > end + 1
                if end < 0:
                    return [], False
                self._offset += end + 1
                lines = self._parse(chunk[: end + 1])
                if not any(data.get("kind") == "resumed" for data in lines):
                    return _typed(lines), False
                handle.seek(0)  # a resume superseded records: the whole file up to here, resolved
                self.skipped_lines = 0
                return _typed(apply_resumes(self._parse(handle.read(self._offset)))), True
        except FileNotFoundError:
            return [], False

    def _parse(self, data: bytes) -> list[dict]:
        parsed = []
        for line in data.splitlines():
            try:
                parsed.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.skipped_lines += 1
        return parsed


def _typed(lines: list[dict]) -> list[LoggedRecord]:
    return [record for record in map(record_from_json, lines) if record is not None]
