"""Where the run controls (pause/resume, stop, mode, penalty weight) go, one class per kind of run.

With no run, mode and penalty weight are the next run's settings; a run trained here takes them
from its session between two batches; a run another process writes takes them as commands appended
to its control file, which its trainer applies between two batches and confirms in its records.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Callable

from pydantic import ValidationError

from geogui.engine.control_file import Command, Pause, Resume, SetMode, SetPenaltyWeight, Stop, append_command, describe
from geogui.gui.settings_form.panel import SettingsPanel
from geogui.gui.worker import TrainingSession
from geogui.settings import Mode, describe_validation_error

# The two settings the toolbar edits live too; they mirror these fields of the Run panel.
MODE_FIELD = ("run", "mode")
PENALTY_FIELD = ("run", "penalty_weight")


class RunState(Enum):
    IDLE = "idle"  # nothing trains here and nothing is followed (an opened run may be shown)
    TRAINING = "training"  # a session of this app trains the current run
    STOPPING = "stopping"  # that session was asked to stop and ends after the current batch
    FOLLOWING = "following"  # another process writes the current run; it is read as it grows

    @property
    def trains_here(self) -> bool:
        """A session of this app is running (its settings cannot change, another run cannot start)."""
        return self in (RunState.TRAINING, RunState.STOPPING)

    @property
    def may_start(self) -> bool:
        """Start may start a run here: not while one trains here, nor while one another process writes
        is followed (Start would quietly stop following it, and two runs would share the machine)."""
        return self is RunState.IDLE

    @property
    def steerable(self) -> bool:
        """Pause and Stop reach a trainer."""
        return self in (RunState.TRAINING, RunState.FOLLOWING)


class Steering:
    """No run to steer: mode and penalty weight go to the settings panel."""

    def __init__(self, panel: SettingsPanel) -> None:
        self.panel = panel

    def toggle_pause(self, paused: bool) -> bool:
        """Ask for the other of paused / running; True when that is the state from now on (False:
        nothing to ask, or the trainer confirms it later)."""
        return False

    def stop(self) -> bool:
        """Ask the run to stop; True when it is stopping from now on."""
        return False

    def set_mode(self, mode: Mode) -> None:
        self.panel.set_raw(*MODE_FIELD, mode)

    def set_penalty(self, text: str) -> None:
        self.panel.set_raw(*PENALTY_FIELD, text)


class SessionSteering(Steering):
    """A run trained here: the panel shows its settings, and its session passes changes on."""

    def __init__(self, panel: SettingsPanel, session: TrainingSession) -> None:
        super().__init__(panel)
        self.session = session

    def toggle_pause(self, paused: bool) -> bool:
        if paused:
            self.session.resume()
        else:
            self.session.pause()
        return True

    def stop(self) -> bool:
        self.session.stop()
        return True

    def set_mode(self, mode: Mode) -> None:
        super().set_mode(mode)
        self.session.request_mode(mode)

    def set_penalty(self, text: str) -> None:
        super().set_penalty(text)
        settings = self.panel.settings()
        # During a run the panel holds the run's (valid) settings, so None here means this value is bad.
        if settings is not None:
            self.session.request_penalty_weight(settings.run.penalty_weight)


class StoppingSteering(SessionSteering):
    """A run trained here that was asked to stop: only mode and penalty weight still go through."""

    def toggle_pause(self, paused: bool) -> bool:
        return False

    def stop(self) -> bool:
        return False


class ControlFileSteering(Steering):
    """A run another process writes: every control is a command in its control file."""

    def __init__(self, panel: SettingsPanel, path: Path, notify: Callable[[str], None],
                 warn: Callable[[str, str], None], penalty_error: Callable[[str | None], None]) -> None:
        super().__init__(panel)
        self.path = path
        self._notify, self._warn, self._penalty_error = notify, warn, penalty_error

    def toggle_pause(self, paused: bool) -> bool:
        self.send(Resume() if paused else Pause())  # the trainer confirms with a paused/resumed event
        return False

    def stop(self) -> bool:
        self.send(Stop())
        return False

    def set_mode(self, mode: Mode) -> None:
        self.send(SetMode(mode=mode))

    def set_penalty(self, text: str) -> None:
        try:
            weight = SetPenaltyWeight(penalty_weight=text)
        except ValidationError as exc:
            self._penalty_error(describe_validation_error(exc))
            return
        self._penalty_error(None)
        self.send(weight)

    def send(self, command: Command) -> bool:
        """Append the command to the run's control file; the trainer applies it between two batches and
        its records confirm it (the plots then mark a mode change)."""
        try:
            append_command(self.path, command, sender="geogui")
        except OSError as exc:
            self._warn("Cannot steer the run", f"{self.path}: the control file cannot be written ({exc.strerror or exc})")
            return False
        self._notify(f"Sent to {self.path.name}: {describe(command)}; it applies between two batches")
        return True


def steering_for(state: RunState, panel: SettingsPanel, session: TrainingSession | None, path: Path | None,
                 notify: Callable[[str], None], warn: Callable[[str, str], None],
                 penalty_error: Callable[[str | None], None]) -> Steering:
    """The steering of a run in `state`: its session's when it trains here, its control file's (at
    `path`) when another process writes it, the settings panel's otherwise."""
    if state is RunState.TRAINING:
        return SessionSteering(panel, session)
    if state is RunState.STOPPING:
        return StoppingSteering(panel, session)
    if state is RunState.FOLLOWING:
        return ControlFileSteering(panel, path, notify, warn, penalty_error)
    return Steering(panel)
