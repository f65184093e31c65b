"""Steering a run through its directory: `control.jsonl`, one command per line, appended by
`geogui-control` (or by the app following the run) and read by the trainer between batches.

The file is the only channel, so it works wherever the run directory does: on the same machine, in a
synced folder, or over sshfs. Writers validate before appending; the reader validates again, because
anyone can edit the file, and answers each bad line with a reason instead of stopping the run.

A line is a JSON object: {"command": "pause" | "resume" | "stop"} or {"command": "mode", "mode": M}
or {"command": "penalty_weight", "penalty_weight": W}, plus "sent_at" (ISO time) and "sender".
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal, Protocol, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from geogui.settings import Mode, RunSettings

CONTROL_FILE = "control.jsonl"


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    sent_at: str | None = Field(None, description="When the command was written (ISO 8601, UTC)")
    sender: str | None = Field(None, description="Who wrote it: geogui-control or the app, and the host")


class Pause(_Command):
    command: Literal["pause"] = "pause"


class Resume(_Command):
    command: Literal["resume"] = "resume"


class Stop(_Command):
    command: Literal["stop"] = "stop"


class SetMode(_Command):
    command: Literal["mode"] = "mode"
    mode: Mode


class SetPenaltyWeight(_Command):
    command: Literal["penalty_weight"] = "penalty_weight"
    # The setting's own bounds: a command can never set what a settings file cannot.
    penalty_weight: Annotated[(float, *RunSettings.model_fields["penalty_weight"].metadata)]


Command = Annotated[Union[Pause, Resume, Stop, SetMode, SetPenaltyWeight], Field(discriminator="command")]
_COMMAND = TypeAdapter(Command)
COMMAND_NAMES = ("pause", "resume", "stop", "mode", "penalty_weight")


class ControlError(ValueError):
    """A command that cannot be written; the message says why."""


@dataclass(frozen=True)
class Rejected:
    """A line of the control file that is not a valid command, and why."""

    line: int
    reason: str


def parse_command(text: str) -> Command:
    """One line of the control file as a command; ControlError (one line) otherwise."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ControlError(f"not JSON ({exc.msg if isinstance(exc, json.JSONDecodeError) else exc})") from None
    if not isinstance(data, dict):
        raise ControlError("not a JSON object")
    if data.get("command") not in COMMAND_NAMES:
        raise ControlError(f"unknown command {data.get('command')!r} (known: {', '.join(COMMAND_NAMES)})")
    try:
        return _COMMAND.validate_python(data)
    except ValidationError as exc:
        # loc[0] is the command's name (the union's tag); the rest names the field.
        problems = [f"{'.'.join(map(str, problem['loc'][1:])) or data['command']}: "
                    f"{'unknown field' if problem['type'] == 'extra_forbidden' else problem['msg']}"
                    for problem in exc.errors()]
        raise ControlError(f"{data['command']}: " + "; ".join(problems)) from None


def describe(command: Command) -> str:
    if isinstance(command, SetMode):
        return f"mode {command.mode.value}"
    if isinstance(command, SetPenaltyWeight):
        return f"penalty weight {command.penalty_weight:g}"
    return command.command


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def append_command(run_dir: Path, command: Command, sender: str = "geogui-control") -> Path:
    """Append `command` to the run's control file as one line, in one write."""
    stamped = command.model_copy(update={"sent_at": _now(), "sender": f"{sender}@{socket.gethostname()}"})
    line = (stamped.model_dump_json(exclude_none=True) + "\n").encode("utf-8")
    path = Path(run_dir) / CONTROL_FILE
    # O_APPEND and a single write: two writers never interleave inside a line.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


class ControlFileReader:
    """Reads the commands appended to a run's control file since the last poll.

    It starts at the file's end as it is when the reader is made: a command left from before the run
    (re)started was never confirmed and is not replayed. Only complete lines are read; a line still
    being written waits for the next poll."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / CONTROL_FILE
        try:
            self._offset = self.path.stat().st_size
        except FileNotFoundError:
            self._offset = 0
        self._line = self._count_lines()

    def _count_lines(self) -> int:
        try:
            with open(self.path, "rb") as handle:
                return handle.read(self._offset).count(b"\n")
        except FileNotFoundError:
            return 0

    def poll(self) -> list[Command | Rejected]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self._offset += end + 1
        out: list[Command | Rejected] = []
        for raw in chunk[: end + 1].splitlines():
            self._line += 1
            if not raw.strip():
                continue
            try:
                out.append(parse_command(raw.decode("utf-8")))
            except UnicodeDecodeError:
                out.append(Rejected(self._line, f"{CONTROL_FILE} line {self._line}: not UTF-8 text; ignored"))
            except ControlError as exc:
                out.append(Rejected(self._line, f"{CONTROL_FILE} line {self._line}: {exc}; ignored"))
        return out


class Controllable(Protocol):
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def stop(self) -> None: ...
    def request_mode(self, mode: Mode) -> None: ...
    def request_penalty_weight(self, weight: float) -> None: ...


def apply_command(command: Command, trainer: Controllable) -> None:
    """Act on a command exactly as the app's buttons do on the trainer it runs itself."""
    if isinstance(command, Pause):
        trainer.pause()
    elif isinstance(command, Resume):
        trainer.resume()
    elif isinstance(command, Stop):
        trainer.stop()
    elif isinstance(command, SetMode):
        trainer.request_mode(command.mode)
    elif isinstance(command, SetPenaltyWeight):
        trainer.request_penalty_weight(command.penalty_weight)
