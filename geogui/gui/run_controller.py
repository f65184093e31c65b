"""The current run and its life cycle.

The plots show one run at a time, the *current run*: the one trained here, one opened from disk (its
records go through the same plot calls as live ones), or one another process is writing, followed on
a timer. What the app does with it is one `RunState`, and the run controls reach the run through the
`Steering` of that state. The controller drives the views that show the run (plots, status bar,
settings and Runs panels) and reports the rest as signals: the window turns them into its title,
dialogs and enabled actions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

from geogui.engine.metrics import BatchRecord, EvalRecord, LoggedRecord, ModeChange, RunEvent, RunFinished, RunStarted
from geogui.gui.followed_run import FollowedRun
from geogui.gui.panel_during_run import PanelDuringRun
from geogui.gui.plotdata.run_source import LoadedRun, load_run, shape_from_meta, shape_of_model
from geogui.gui.plots.board import PlotBoard
from geogui.gui.settings_form.panel import SettingsPanel
from geogui.gui.steering import MODE_FIELD, PENALTY_FIELD, RunState, Steering, steering_for
from geogui.gui.widgets.nonfinite_alert import LOWER_FACTOR
from geogui.gui.widgets.open_progress import OpenProgress
from geogui.gui.widgets.runs_panel import RunsPanel
from geogui.gui.widgets.status_bar import RunStatusBar
from geogui.gui.worker import METRICS_INTERVAL_S, TrainingSession
from geogui.rundir.columns import ReadCancelled
from geogui.rundir.driver import RunRefused, lower_learning_rates, plan_resume
from geogui.rundir.runlog import RunLogError, effective_status, read_meta
from geogui.settings import Mode, Settings
from geogui.settings import store as settings_store

FOLLOW_MS = 500  # how often a run written by another process is polled
STALL_AFTER_S = 30.0  # a followed run with no new record for this long is shown as stalled


class RunController(QObject):
    state_changed = Signal(object)  # RunState
    paused_changed = Signal(bool)
    mode_confirmed = Signal(object)  # Mode: the followed run's trainer has switched to it
    penalty_error = Signal(object)  # str | None: what is wrong with the penalty weight sent to a followed run
    current_run_changed = Signal(object)  # Path | None
    warning = Signal(str, str)  # title, message
    failed = Signal(str)  # the run trained here failed; one line
    nonfinite_paused = Signal(object, int)  # the trainer paused itself: the report, the last good checkpoint's step

    def __init__(self, window: QWidget, plots: PlotBoard, status: RunStatusBar, panel: SettingsPanel,
                 runs_panel: RunsPanel, requested_device: str, persist: bool = True,
                 metrics_interval_s: float = METRICS_INTERVAL_S, follow_ms: int = FOLLOW_MS,
                 stall_after_s: float = STALL_AFTER_S) -> None:
        super().__init__(window)
        self._window = window
        self.plots, self.status, self.panel, self.runs_panel = plots, status, panel, runs_panel
        self._persist = persist  # False for one-off sessions (--settings, --screenshot)
        self._metrics_interval_s, self._stall_after_s = metrics_interval_s, stall_after_s
        self.state = RunState.IDLE
        self.steering: Steering = Steering(panel)
        self.session: TrainingSession | None = None
        self.followed: FollowedRun | None = None
        self.paused = False
        self.current_run: Path | None = None  # the run directory the plots show
        self.notes: list[str] = []  # what was wrong with the current run's files, one line each
        # What About says about the device: torch decides at the start of a run, in the worker thread.
        self.device_description = f"{requested_device} requested; chosen when a run starts"
        self._nonfinite: RunEvent | None = None  # a non-finite report waiting for the pause it causes
        self._good_checkpoint = 0  # the step of the checkpoint kept after it
        self._after_session: Callable[[], object] | None = None  # once the session has ended (resume, restart)
        self.panel_during_run = PanelDuringRun(panel)  # shows the run's settings, then the user's again
        self.follow_timer = QTimer(self)
        self.follow_timer.setInterval(follow_ms)
        self.follow_timer.timeout.connect(self.poll_followed_run)
        plots.batch_plotted.connect(status.show_batch)  # the step the plots show, not the newest arrived

    # -- state ------------------------------------------------------------------------------------
    @property
    def following(self) -> bool:
        return self.state is RunState.FOLLOWING

    def _set_state(self, state: RunState) -> None:
        self.state = state
        self.steering = steering_for(state, self.panel, self.session, self.current_run, self.status.show_notice,
                                     self.warning.emit, self.penalty_error.emit)
        self.state_changed.emit(state)

    def _set_paused(self, paused: bool) -> None:
        self.paused = paused
        self.paused_changed.emit(paused)

    def set_current_run(self, path: Path | None, status: str | None = None) -> None:
        self.current_run = path
        self.plots.run_label = path.name if path is not None else ""  # named in the plots' readout and data
        self.status.show_run_state("" if path is None else path.name, status)
        self.runs_panel.protected = {path} if self.session is not None and path is not None else set()
        self.current_run_changed.emit(path)

    def _set_notes(self, notes: list[str]) -> None:
        self.notes = list(notes)
        self.status.run_state.setToolTip("\n".join(notes) or "The run shown in the plots")
        if notes:
            self.status.show_notice("; ".join(notes))

    def why_no_start(self) -> str | None:  # when the reason is not plain to see
        following = self.state is RunState.FOLLOWING and self.current_run is not None
        return (f"Not while following {self.current_run.name}, which another process trains: Start is possible "
                "again once that run ends, or after opening another run") if following else None

    # -- the controls -----------------------------------------------------------------------------
    def toggle_pause(self) -> None:
        if self.steering.toggle_pause(self.paused):
            self._set_paused(not self.paused)

    def stop(self) -> None:
        if self.steering.stop():
            self.status.show_notice("Stopping after the current batch…")
            self._set_state(RunState.STOPPING)

    def choose_mode(self, mode: Mode) -> None:
        self.steering.set_mode(mode)

    def enter_penalty(self, text: str) -> None:
        self.steering.set_penalty(text)
        if self.state.trains_here and self.panel.settings() is not None:  # the panel goes back when it ends
            self.status.show_notice(f"Penalty weight {text}: for this run only, from its next batch")

    # -- training here ----------------------------------------------------------------------------
    def start(self, settings: Settings | None = None, make_driver: Callable | None = None) -> bool:
        """Start a new run with the settings panel's settings, or with `settings` driven by `make_driver`
        (a run of a mode comparison), which the panel shows until the run ends."""
        from_panel = settings is None
        settings = self.panel.settings() if from_panel else settings
        if settings is None or self.session is not None:
            return False
        if self._persist and from_panel:
            self.save_settings(settings)
        self.panel_during_run.keep()
        if not from_panel:
            self.panel.set_settings(settings)
        self._start_session(settings, make_driver=make_driver)
        return True

    def resume(self, path: Path, learning_rate_factor: float = 1.0) -> bool:
        """Continue a stopped, crashed or failed run from its latest checkpoint, in its own directory
        and with its own settings (both learning rates times `learning_rate_factor`); its earlier
        records are plotted first, then the new ones live."""
        path = Path(path)
        if self.session is not None:
            self.warning.emit("Cannot resume", "A run is training; stop it before resuming another.")
            return False
        try:  # the same checks as geogui-train --resume: readable, not being written, not finished, valid
            settings = plan_resume(path, learning_rate_factor=learning_rate_factor).settings
        except RunRefused as exc:
            self.warning.emit("Cannot resume", str(exc))
            return False
        self.panel_during_run.keep()
        self.panel.set_settings(settings)  # the panel shows the settings being trained
        self._start_session(settings, resume_dir=path)
        self.status.show_notice(f"Resuming {path.name} from its latest checkpoint; the Settings panel shows its "
                                "settings until it ends, then yours again")
        return True

    def _start_session(self, settings: Settings, resume_dir: Path | None = None, make_driver=None) -> None:
        self._stop_following()
        self.set_current_run(resume_dir)
        self.notes = []
        self.plots.start_shaped(shape_of_model(settings.model))
        self.status.reset()
        session = TrainingSession(settings, self._metrics_interval_s, self, resume_dir, make_driver=make_driver)
        # Bound methods of this QObject: the worker's signals arrive in the GUI thread.
        worker = session.worker
        worker.log_opened.connect(self._on_log_opened)
        worker.run_started.connect(self._on_run_started)
        worker.metrics_ready.connect(self._on_metrics)
        worker.mode_changed.connect(self._on_mode_changed)
        worker.event_reported.connect(self.on_event)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        session.ended.connect(self._on_session_ended)
        self.session = session
        self._set_paused(False)
        self._set_state(RunState.TRAINING)
        session.start()
        self.status.show_notice("Building the model…")

    def shutdown(self) -> None:
        """The app is closing: stop a run trained here within one batch and wait for its thread
        (never terminate() it), and stop following."""
        if self.session is not None:
            self.status.show_notice("Stopping the run…")
            self.session.shutdown()
            self._drop_session()
            self.panel_during_run.give_back()  # the settings saved on closing are the user's, not the run's
        self.follow_timer.stop()

    def save_settings(self, settings: Settings) -> None:
        try:
            saved = settings_store.save_settings(settings)
        except OSError as exc:
            self.status.show_notice(f"Settings not saved: {exc}")
            return
        if saved.notice:
            self.status.show_notice(saved.notice)

    # -- worker signals (GUI thread) --------------------------------------------------------------
    def _on_log_opened(self, path: Path) -> None:
        self.set_current_run(path)
        self.runs_panel.refresh()
        self.runs_panel.select(path)

    def _on_run_started(self, started: RunStarted) -> None:
        self.plots.start_run(started.presentations, started.rotation_dimensions, started.expert_names,
                             started.max_rotation)
        self.status.show_started(started)
        requested = "" if started.requested_device in ("auto", started.device) else \
            f" (requested {started.requested_device})"
        self.device_description = f"{started.device}{requested}"
        self.status.show_notice(f"Training on {started.device}: {started.parameters:,} parameters, "
                                f"data: {started.data_source}")

    def _on_metrics(self, records: list[BatchRecord | EvalRecord]) -> None:
        self.plots.append(records)

    def _on_mode_changed(self, change: ModeChange) -> None:
        self.plots.add_mode_change(change)
        self.panel.set_raw(*MODE_FIELD, Mode(change.mode))
        self.panel.set_raw(*PENALTY_FIELD, change.penalty_weight)

    def on_event(self, event: RunEvent) -> None:
        self.plots.add_event(event)  # a pause is marked on the plots
        if event.event in ("paused", "resumed"):
            self._set_paused(event.event == "paused")  # the trainer also pauses itself on a non-finite loss
        if event.event == "device_fallback":
            self.device_description += f": {event.message}"
        # The alert waits for the pause that follows the report, so that its choices act on a
        # trainer that has really paused.
        if event.event == "nonfinite_loss":
            self._nonfinite, self._good_checkpoint = event, 0
        elif event.event == "good_checkpoint":
            self._good_checkpoint = event.step
        elif event.event == "paused" and self._nonfinite is not None:
            self.nonfinite_paused.emit(self._nonfinite, self._good_checkpoint)
            self._nonfinite = None
        self.status.show_event(event)

    def nonfinite_choice(self, choice: str, good_checkpoint: int) -> None:
        """The way on chosen in the non-finite alert: "continue", "lower" (the learning rates) or "stop"."""
        if self.session is None:
            return
        if choice == "continue":
            if self.paused:
                self.toggle_pause()
            return
        if choice == "lower":
            run, settings = self.current_run, self.panel.settings()
            if good_checkpoint and run is not None:
                self._after_session = lambda: self.resume(run, learning_rate_factor=LOWER_FACTOR)
            elif settings is not None:
                lowered = lower_learning_rates(settings, LOWER_FACTOR)
                self._after_session = lambda: (self.panel.set_settings(lowered), self.start())
        self.stop()

    def _on_failed(self, message: str) -> None:
        self.failed.emit(message)

    def _on_finished(self, finished: RunFinished) -> None:
        verb = {"finished": "finished", "stopped": "stopped"}.get(finished.status, finished.status)
        self.status.show_notice(f"Run {verb} after {finished.step} steps")
        self.plots.redraw()  # the last records at once, and the status bar's last step with them
        self.status.show_ended()

    def _on_session_ended(self) -> None:
        if self.session is not None:
            # `finished` is emitted from the thread just before it ends: wait for that last moment.
            self.session.worker_thread.wait()
            self._drop_session()
            self.runs_panel.protected.clear()
            self.runs_panel.refresh()
            if restored := self.panel_during_run.give_back():  # after the run's last word, not instead of it
                self.status.show_notice(f"{self.status.currentMessage()} · the Settings panel is back to your "
                                        f"settings (that run's own: {', '.join(restored)})".lstrip(" ·"))
        action, self._after_session = self._after_session, None
        if action is not None:
            action()

    def _drop_session(self) -> None:
        session, self.session = self.session, None
        session.deleteLater()
        self._set_paused(False)
        self._set_state(RunState.IDLE)

    # -- runs on disk: open and follow ------------------------------------------------------------
    def open(self, path: Path) -> bool:
        """Show a run directory's plots. A run another process is still writing is followed live."""
        path = Path(path)
        if self.session is not None:
            if path != self.current_run:
                self.warning.emit("Cannot open the run", "A run is training; stop it before opening another. To see "
                                                         "runs together, tick them in the Runs panel.")
            return path == self.current_run
        try:
            meta = read_meta(path)
        except RunLogError:
            meta = None  # load_run says what is wrong and plots what it can
        if meta is not None and effective_status(meta) == "running":
            return self._follow(path, meta)
        opening = OpenProgress(self._window, path.name)
        try:
            run = load_run(path, opening.progress, opening.cancelled)
        except RunLogError as exc:
            self.warning.emit("Cannot open the run", str(exc))
            return False
        except ReadCancelled:
            self.status.show_notice(f"Opening {path.name} was cancelled")
            return False
        finally:
            opening.close()
        self._show_loaded(path, run)
        return True

    def _show_loaded(self, path: Path, run: LoadedRun) -> None:
        self._stop_following()
        self.plots.start_shaped(run.shape)
        self.status.reset()
        self.status.show_total(run.total_steps)
        self.plots.load_columns(run.columns)
        self.set_current_run(path, run.status)
        self._set_notes(run.notes)
        if not len(run.columns):
            self.status.show_notice(f"{run.name}: no batches recorded yet")
        self.runs_panel.select(path)

    def _follow(self, path: Path, meta: dict) -> bool:
        self._stop_following()
        try:
            shape = shape_from_meta(meta)
        except (KeyError, TypeError, ValueError):
            self.warning.emit("Cannot follow the run", f"{path / 'meta.json'}: no usable model settings")
            return False
        self.followed = FollowedRun(path, shape, self._stall_after_s)
        self.plots.start_shaped(shape)
        self.status.reset()
        self.status.show_total(meta.planned_steps)
        self.set_current_run(path, "running")
        self._set_notes([])
        self._set_state(RunState.FOLLOWING)
        self.poll_followed_run()
        if self.followed is not None:
            self.followed.catching_up = False
            self.follow_timer.start()
        self.runs_panel.select(path)
        return True

    def poll_followed_run(self) -> None:
        """Plot what the followed run has written since the last poll; stop when it has ended."""
        followed, path = self.followed, self.current_run
        if followed is None or path is None:
            return
        update = followed.read()
        if update.meta_error is not None:
            self._set_notes([update.meta_error])
        if update.reset:  # a resume superseded records: plot the run again as it now stands
            self.plots.start_shaped(followed.shape)
        if update.fresh:
            columns = update.columns
            self.plots.load_columns(columns)
            self._confirmed([*columns.mode_changes, *columns.events])
        if update.running:
            self.status.show_run_state(path.name, "running")
            self.status.show_following(*followed.liveness(self.paused))
            return
        notes = followed.end_notes()
        self._stop_following()
        self.status.show_run_state(path.name, update.status or "unreadable")
        self._set_notes(notes)
        self.status.show_notice(f"{path.name} has ended: {update.status or 'unreadable'}" + (
            f" ({'; '.join(notes)})" if notes else ""))
        self.runs_panel.refresh()

    def _stop_following(self) -> None:
        self.follow_timer.stop()
        self.followed = None
        self.status.show_following(None)
        if self.session is None:
            self._set_paused(False)
        if self.state is RunState.FOLLOWING:
            self._set_state(RunState.IDLE)
        else:
            self.state_changed.emit(self.state)

    def _confirmed(self, records: list[LoggedRecord]) -> None:
        """The followed trainer's answers to commands: the controls show what it actually does."""
        for record in records:
            if isinstance(record, ModeChange):
                self.mode_confirmed.emit(Mode(record.mode))
            elif isinstance(record, RunEvent) and record.event in ("paused", "resumed"):
                self._set_paused(record.event == "paused")
