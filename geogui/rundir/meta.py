"""meta.json, typed: what a run is (its settings, device, versions, times, status, mode changes,
events, continuations) and who is writing it.

`read_meta` loads what every version has written: a key this version does not know is kept (and
written back), a value of the wrong type is dropped (the field then has its default) rather than
making the whole run unreadable. Only a file that is missing, not JSON, or has no settings is an
error (`RunLogError`, one line naming the file). `write_meta` replaces the file atomically.

The settings stay as they were written (`RunMeta.settings`, a dict): a run must open even when its
settings no longer validate (a data file since removed); `settings_model()` and `model_settings()`
validate them for the callers that need a Settings.
"""

from __future__ import annotations

import json
import os
import socket
from geogui.str_enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, ValidationError

from geogui.atomic_write import atomic_write
from geogui.engine.metrics import ModeChange, RunEvent
from geogui.engine.log_lines import record_from_json
from geogui.rundir.layout import META_FILE, RunLogError
from geogui.settings import ModelSettings, Settings


class RunStatus(StrEnum):
    """A run's status: the four a RunLog writes, and two a reader derives."""

    RUNNING = "running"
    FINISHED = "finished"  # every planned step done
    STOPPED = "stopped"  # asked to stop
    FAILED = "failed"  # ended by an error
    CRASHED = "crashed"  # recorded as running, but its writer is gone (killed, power lost)
    UNREADABLE = "unreadable"  # meta.json cannot be read

    @property
    def continuable(self) -> bool:
        """Whether the run can be continued from its latest checkpoint."""
        return self in (RunStatus.STOPPED, RunStatus.CRASHED, RunStatus.FAILED)


class Continuation(BaseModel):
    """One continuation of the run from a checkpoint (an entry of meta.json's "resumes")."""

    model_config = ConfigDict(extra="allow")
    from_step: int
    at: str = ""


class ReplicaCheck(BaseModel):
    """Whether the ranks of a distributed run ended with the same parameters."""

    model_config = ConfigDict(extra="allow")
    parameters_sha256: list[str] = Field(default_factory=list)
    agree: bool = True


def model_settings_of(settings: dict[str, Any]) -> ModelSettings:
    """The model section of settings as meta.json holds them, validated (keys this version does not
    know are left out); raises ValueError (pydantic's ValidationError among them) when it is not
    usable."""
    raw = settings.get("model")
    if not isinstance(raw, dict):
        raise ValueError("no model settings")
    return ModelSettings.model_validate({k: v for k, v in raw.items() if k in ModelSettings.model_fields})


def _record_field(cls: type) -> Any:
    """A typed record as a meta.json field: read with record_from_json, written as its line."""

    def validate(value: Any) -> Any:
        if isinstance(value, cls):
            return value
        try:
            record = record_from_json(value) if isinstance(value, dict) else None
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a {cls.__name__}: {exc}") from None
        if not isinstance(record, cls):
            raise ValueError(f"not a {cls.__name__}")
        return record

    return Annotated[cls, PlainValidator(validate), PlainSerializer(lambda record: record.to_json())]


ModeChangeEntry = _record_field(ModeChange)
EventEntry = _record_field(RunEvent)


class RunMeta(BaseModel):
    """The contents of meta.json. Fields a reader does not find keep their defaults, and are not
    written back (`to_json`), so a file read and written again keeps its keys."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, validate_assignment=True)

    name: str = ""
    status: RunStatus = RunStatus.CRASHED  # a file without one was never closed
    started_at: str = ""  # ISO 8601, UTC
    ended_at: str | None = None
    settings: dict[str, Any]  # as written (see the module docstring)
    versions: dict[str, str] = Field(default_factory=dict)
    argv: list[str] = Field(default_factory=list)
    device: str | None = None  # the device used; requested_device is what the settings asked for
    requested_device: str | None = None
    data_source: str | None = None
    parameters: int | None = None
    total_steps: int | None = None
    # The first held-out question and its answer (`RunStarted.heldout_prompt`): the Samples tab's prompt.
    heldout_prompt: str | None = None
    heldout_answer: str | None = None
    steps_done: int = 0  # the last batch step logged, as of the last time meta.json was written
    last_loss: float | None = None
    mode_changes: list[ModeChangeEntry] = Field(default_factory=list)
    events: list[EventEntry] = Field(default_factory=list)
    continuations: list[Continuation] = Field(default_factory=list, alias="resumes")
    # The writer: a reader tells a live run from one whose process died by these.
    pid: int | None = None
    host: str | None = None
    writer: str | None = None
    # Written by geogui-train (world_size, backend) and under torchrun (the rest).
    world_size: int | None = None
    backend: str | None = None
    global_batch_size: int | None = None
    ranks: list[dict[str, Any]] | None = None
    replicas: ReplicaCheck | None = None
    error: str | None = None

    def settings_model(self) -> Settings:
        """The settings, validated; raises pydantic's ValidationError when they no longer are valid."""
        return Settings.model_validate(self.settings)

    def model_settings(self) -> ModelSettings:
        return model_settings_of(self.settings)

    @property
    def initial_mode(self) -> str | None:
        run = self.settings.get("run")
        mode = run.get("mode") if isinstance(run, dict) else None
        return mode if isinstance(mode, str) else None

    @property
    def modes(self) -> tuple[str, ...]:
        """Every mode the run trained in, in the order they were first used."""
        modes = [self.initial_mode] if self.initial_mode is not None else []
        for change in self.mode_changes:
            if change.mode not in modes:
                modes.append(change.mode)
        return tuple(modes)

    @property
    def planned_steps(self) -> int | None:
        """The step the run trains to: as the trainer reported it, else as the settings say."""
        if self.total_steps:
            return self.total_steps
        run = self.settings.get("run")
        steps = run.get("steps") if isinstance(run, dict) else None
        return steps if isinstance(steps, int) else None

    def effective_status(self) -> RunStatus:
        """The recorded status, except that a running run whose writer is gone is CRASHED."""
        if self.status is RunStatus.RUNNING and self.host == socket.gethostname():
            if self.pid == os.getpid() and self.writer is not None:
                return RunStatus.RUNNING if self.writer in _live_writers else RunStatus.CRASHED
            if self.pid is None or not _pid_alive(self.pid):
                return RunStatus.CRASHED
        return self.status

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


# The `writer` tokens of the RunLogs open in this process: a run this process wrote and no longer
# holds open (its log could not be closed, on a full disk) is not running, although the pid lives.
_live_writers: set[str] = set()


def writer_opened(token: str) -> None:
    _live_writers.add(token)


def writer_closed(token: str) -> None:
    _live_writers.discard(token)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    except (OverflowError, ValueError):  # not a pid this system can have
        return False
    return True


def effective_status(meta: RunMeta) -> RunStatus:
    return meta.effective_status()


def parse_meta(data: Any, file: Path) -> RunMeta:
    """meta.json's decoded JSON as a RunMeta (see the module docstring for what is tolerated)."""
    if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
        raise RunLogError(f"{file}: not a geogui run description")
    for _ in range(3):  # a dropped value cannot make another invalid: the second try passes
        try:
            return RunMeta.model_validate(data)
        except ValidationError as exc:
            data = _without(data, [error["loc"] for error in exc.errors()])
    raise RunLogError(f"{file}: not a geogui run description")


def _without(data: dict[str, Any], locations: list[tuple]) -> dict[str, Any]:
    """`data` less the values at `locations`: the item of a list, else the whole key."""
    out = dict(data)
    items: dict[str, set[int]] = {}
    for loc in locations:
        key = loc[0] if loc else None
        if key not in out or key == "settings":
            continue
        if len(loc) > 1 and isinstance(loc[1], int) and isinstance(out[key], list):
            items.setdefault(key, set()).add(loc[1])
        else:
            items.pop(key, None)
            del out[key]
    for key, drop in items.items():
        if key in out:
            out[key] = [item for index, item in enumerate(out[key]) if index not in drop]
    return out


def read_meta(run_dir: Path) -> RunMeta:
    file = Path(run_dir) / META_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunLogError(f"{file}: missing; is this a geogui run directory?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunLogError(f"{file}: unreadable ({exc})") from None
    return parse_meta(data, file)


def write_json_atomic(path: Path, data: Any) -> None:
    """JSON (a RunMeta as meta.json holds it) to `path`; a full disk keeps the old file whole."""
    if isinstance(data, RunMeta):
        data = data.to_json()
    with atomic_write(Path(path)) as handle:
        json.dump(data, handle, indent=2)


def write_meta(run_dir: Path, meta: RunMeta) -> None:
    write_json_atomic(Path(run_dir) / META_FILE, meta)
