"""The main window: settings and runs docks on the left, plots in the middle, run toolbar on top,
status below.

It wires the parts together and owns the run's life cycle: Start builds a TrainingSession, the
worker's signals feed the plots and the status bar, and closing the window mid-run stops the trainer
and waits for its thread (the run log is closed as "stopped" before the window goes away).

The plots show one run at a time, the *current run*: the one being trained, one opened from disk
(its records go through the same plot calls as live ones), or one another process is writing, which
is followed with a MetricsTail on a timer. Ticking two or more runs in the Runs panel overlays them.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import ValidationError
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QMessageBox, QVBoxLayout, QWidget

from geogui import paths

from geogui.settings import store as settings_store
from geogui.engine.control_file import Command, Pause, Resume, SetMode, SetPenaltyWeight, Stop, append_command, describe
from geogui.rundir.export.tables import ExportError, export_run
from geogui.engine.metrics import (
    BatchRecord,
    EvalRecord,
    LoggedRecord,
    ModeChange,
    RunEvent,
    RunFinished,
    RunStarted,
)
from geogui.rundir.runlog import METRICS_FILE, RunLogError, effective_status, read_meta
from geogui.rundir.columns import ReadCancelled
from geogui.rundir.catalog import MetricsTail
from geogui.rundir.export.tensorboard import INSTALL_HINT as TENSORBOARD_INSTALL_HINT
from geogui.rundir.export.tensorboard import tensorboard_available
from geogui.gui.widgets.about_dialog import AboutDialog
from geogui.gui.app_icon import app_icon
from geogui.gui.widgets.nonfinite_alert import LOWER_FACTOR, NonFiniteAlert
from geogui.gui.widgets.open_progress import OpenProgress
from geogui.gui.plots.board import ExportTargetError, Overlay, PlotBoard
from geogui.gui.widgets.presets import PresetBar
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plotdata.run_source import TORN_TAIL_NOTE, RunShape, load_run, shape_from_meta
from geogui.gui.widgets.toolbar import RunToolbar
from geogui.gui.widgets.runs_panel import REFRESH_MS, RunsPanel
from geogui.gui.settings_form.panel import SettingsPanel
from geogui.gui.widgets.status_bar import RunStatusBar
from geogui.gui.worker import METRICS_INTERVAL_S, TrainingSession
from geogui.settings import Mode, Settings, describe_validation_error

# The two settings the toolbar edits live too; they mirror these fields of the Run panel.
MODE_FIELD = ("run", "mode")
PENALTY_FIELD = ("run", "penalty_weight")
FOLLOW_MS = 500  # how often a run written by another process is polled
STALL_AFTER_S = 30.0  # a followed run with no new record for this long is shown as stalled
RUN_EXPORT_FILTERS = {
    "CSV, one row per batch (*.csv)": ".csv",
    "JSONL, every record (*.jsonl)": ".jsonl",
    "Summary, Markdown (*.md)": ".md",
    "Summary, JSON (*.json)": ".json",
}
PLOT_EXPORT_FILTERS = {"PNG image (*.png)": ".png", "SVG drawing (*.svg)": ".svg"}


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings, notice: str | None = None, persist: bool = True,
                 metrics_interval_s: float = METRICS_INTERVAL_S, follow_ms: int = FOLLOW_MS,
                 runs_refresh_ms: int = REFRESH_MS, stall_after_s: float = STALL_AFTER_S) -> None:
        super().__init__()
        self.setWindowTitle("geogui")
        self.setWindowIcon(app_icon())
        self.resize(1500, 950)
        self._persist = persist  # False for one-off sessions (--settings, --screenshot)
        self._metrics_interval_s = metrics_interval_s
        self.session: TrainingSession | None = None
        self._paused = False
        self._stopping = False
        self.error_box: QMessageBox | None = None
        self.warning_box: QMessageBox | None = None
        self.about_box: AboutDialog | None = None
        self.nonfinite_alert: NonFiniteAlert | None = None
        self._nonfinite: RunEvent | None = None  # a non-finite report waiting for the pause it causes
        self._good_checkpoint = 0  # the step of the checkpoint kept after it
        self._after_session = None  # what to do once the current session has ended (resume, restart)
        # What About says about the device: torch decides at the start of a run, in the worker thread.
        self.device_description = f"{settings.device.device} requested; chosen when a run starts"
        self.current_run: Path | None = None  # the run directory the plots show
        self.notes: list[str] = []  # what was wrong with the current run's files, one line each
        self._tail: MetricsTail | None = None  # set while following a run another process writes
        self._tail_shape: RunShape | None = None
        self._stall_after_s = stall_after_s
        self._last_record_at = 0.0  # wall-clock time of the followed run's latest record
        self._catching_up = False
        self._overlay_cache: dict[Path, tuple[tuple[int, int], RunSeries]] = {}
        self.follow_timer = QTimer(self)
        self.follow_timer.setInterval(follow_ms)
        self.follow_timer.timeout.connect(self.poll_followed_run)

        self.plots = PlotBoard()
        self.setCentralWidget(self.plots)
        self.panel = SettingsPanel(settings)
        self.presets = PresetBar(self.panel.settings)
        self.dock = self._build_dock()
        self.runs_panel = RunsPanel(paths.runs_dir, runs_refresh_ms)
        self.runs_dock = self._build_runs_dock()
        self.toolbar = RunToolbar(self)
        self.addToolBar(self.toolbar)
        self.status = RunStatusBar(self)
        self.setStatusBar(self.status)
        self._build_menus()

        self.toolbar.start_action.triggered.connect(self.start_run)
        self.toolbar.pause_action.triggered.connect(self.toggle_pause)
        self.toolbar.stop_action.triggered.connect(self.stop_run)
        self.toolbar.mode_chosen.connect(self._on_mode_chosen)
        self.toolbar.penalty_entered.connect(self._on_penalty_entered)
        self.panel.settings_edited.connect(self._mirror_panel_in_toolbar)
        self.panel.validity_changed.connect(lambda _valid: self._update_actions())
        self.presets.preset_loaded.connect(self.panel.set_settings)
        self.presets.message.connect(self.status.show_notice)
        self.runs_panel.open_requested.connect(self.open_run)
        self.runs_panel.resume_requested.connect(self.resume_run)
        self.runs_panel.ticked_changed.connect(lambda _paths: self._update_overlays())
        self.runs_panel.refreshed.connect(self._update_overlays)
        self.runs_panel.renamed.connect(self._on_run_renamed)
        self.runs_panel.deleted.connect(self._on_run_deleted)
        self.runs_panel.message.connect(self.status.show_notice)

        self._mirror_panel_in_toolbar()
        self._update_actions()
        if notice:
            self.status.show_notice(notice)

    # -- layout -----------------------------------------------------------------------------------
    def _build_dock(self) -> QDockWidget:
        dock = QDockWidget("Settings", self)
        dock.setObjectName("settings-dock")
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        body = QWidget()
        column = QVBoxLayout(body)
        column.setContentsMargins(4, 4, 4, 4)
        column.addWidget(self.presets)
        column.addWidget(self.panel, 1)
        dock.setWidget(body)
        dock.setMinimumWidth(340)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        return dock

    def _build_runs_dock(self) -> QDockWidget:
        dock = QDockWidget("Runs", self)
        dock.setObjectName("runs-dock")
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        dock.setWidget(self.runs_panel)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.tabifyDockWidget(self.dock, dock)
        self.dock.raise_()  # Settings in front; Runs is one tab away
        return dock

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        open_run = file_menu.addAction("Open Run…", self.ask_open_run)
        open_run.setShortcut(QKeySequence.StandardKey.Open)
        open_run.setMenuRole(QAction.MenuRole.NoRole)
        file_menu.addSeparator()
        export_run_action = file_menu.addAction("Export Run…", self.ask_export_run)
        export_run_action.setMenuRole(QAction.MenuRole.NoRole)
        self.export_plot_menu = file_menu.addMenu("Export Plot")
        for name, plot in self.plots.plot_items():
            action = self.export_plot_menu.addAction(
                f"{name}…", lambda plot=plot, name=name: self.ask_export_plots(plot, name))
            action.setMenuRole(QAction.MenuRole.NoRole)
        export_all = file_menu.addAction("Export All Plots…", self.ask_export_plots)
        export_all.setMenuRole(QAction.MenuRole.NoRole)
        # Without the optional extra the item stays, and says how to get it.
        tensorboard_label = "Export to TensorBoard…" if tensorboard_available() else (
            'Export to TensorBoard… (needs: pip install "geogui[tensorboard]")')
        self.export_tensorboard_action = file_menu.addAction(tensorboard_label, self.ask_export_tensorboard)
        self.export_tensorboard_action.setMenuRole(QAction.MenuRole.NoRole)
        file_menu.addSeparator()
        save_preset = file_menu.addAction("Save Preset…", self.presets.ask_and_save)
        # Without NoRole, Qt's text heuristics may move such items into the macOS application menu.
        save_preset.setMenuRole(QAction.MenuRole.NoRole)
        file_menu.addSeparator()
        quit_action = file_menu.addAction("Quit", self.close)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)

        run_menu = bar.addMenu("&Run")
        for action in (self.toolbar.start_action, self.toolbar.pause_action, self.toolbar.stop_action):
            run_menu.addAction(action)
        run_menu.addSeparator()
        for action in self.toolbar.mode_actions.values():
            run_menu.addAction(action)
        run_menu.addSeparator()
        resume = run_menu.addAction("Resume Selected Run", lambda: self._for_selected(self.resume_run))
        resume.setToolTip("Continue the run selected in the Runs panel from its latest checkpoint")
        resume.setMenuRole(QAction.MenuRole.NoRole)

        view_menu = bar.addMenu("&View")
        toggle_dock = self.dock.toggleViewAction()
        toggle_dock.setMenuRole(QAction.MenuRole.NoRole)  # its text is "Settings": keep it out of Preferences
        view_menu.addAction(toggle_dock)
        toggle_runs = self.runs_dock.toggleViewAction()
        toggle_runs.setMenuRole(QAction.MenuRole.NoRole)
        view_menu.addAction(toggle_runs)

        help_menu = bar.addMenu("&Help")
        about = help_menu.addAction("About geogui", self.show_about)
        about.setMenuRole(QAction.MenuRole.AboutRole)

    def show_about(self) -> None:
        box = AboutDialog(self.device_description, paths.config_dir(), paths.runs_dir(), parent=self)
        box.open()  # not exec(): never block the event loop while a run is plotting
        self.about_box = box

    # -- run life cycle ---------------------------------------------------------------------------
    def start_run(self) -> bool:
        settings = self.panel.settings()
        if settings is None or self.session is not None:
            return False
        if self._persist:
            self._save_settings(settings)
        self._start_session(settings)
        return True

    def resume_run(self, path: Path, learning_rate_factor: float = 1.0) -> bool:
        """Continue a stopped, crashed or failed run from its latest checkpoint, in its own directory
        and with its own settings (both learning rates times `learning_rate_factor`); its earlier
        records are plotted first, then the new ones live."""
        path = Path(path)
        if self.session is not None:
            self._warn("Cannot resume", "A run is training; stop it before resuming another.")
            return False
        try:
            meta = read_meta(path)
        except RunLogError as exc:
            self._warn("Cannot resume", str(exc))
            return False
        status = effective_status(meta)
        if status == "running":
            self._warn("Cannot resume", f"{path.name} is still being written by process {meta.get('pid')}.")
            return False
        if status == "finished":
            self._warn("Cannot resume", f"{path.name} has finished all its {meta.get('steps_done')} steps; "
                                        "there is nothing to continue.")
            return False
        try:
            settings = Settings.model_validate(meta["settings"])
            if learning_rate_factor != 1.0:
                settings = with_lower_learning_rates(settings, learning_rate_factor)
        except ValidationError as exc:
            self._warn("Cannot resume", f"{path / 'meta.json'}: {describe_validation_error(exc)}")
            return False
        self.panel.set_settings(settings)  # the panel shows the settings being trained
        self._start_session(settings, resume_dir=path)
        self.status.show_notice(f"Resuming {path.name} from its latest checkpoint…")
        return True

    def _start_session(self, settings: Settings, resume_dir: Path | None = None) -> None:
        self._stop_following()
        self._set_current_run(resume_dir)
        self.notes = []
        self.plots.start_run(settings.model.presentations, settings.model.rotation_dimensions)
        self.status.reset()
        session = TrainingSession(settings, self._metrics_interval_s, parent=self, resume_dir=resume_dir)
        worker = session.worker
        worker.log_opened.connect(self._on_log_opened)
        worker.run_started.connect(self._on_run_started)
        worker.metrics_ready.connect(self._on_metrics)
        worker.mode_changed.connect(self._on_mode_changed)
        worker.event_reported.connect(self._on_event)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        session.ended.connect(self._on_session_ended)
        self.session, self._paused, self._stopping = session, False, False
        session.start()
        self.status.show_notice("Building the model…")
        self._update_actions()

    def toggle_pause(self) -> None:
        if self.following:  # the trainer confirms with a paused/resumed event in the records
            self._send_command(Resume() if self._paused else Pause())
            return
        if self.session is None or self._stopping:
            return
        if self._paused:
            self.session.resume()
        else:
            self.session.pause()
        self._set_paused(not self._paused)

    def stop_run(self) -> None:
        if self.following:
            self._send_command(Stop())
            return
        if self.session is None or self._stopping:
            return
        self.session.stop()
        self._stopping = True
        self.status.show_notice("Stopping after the current batch…")
        self._update_actions()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.session is not None:
            self.status.show_notice("Stopping the run…")
            self.session.shutdown()  # stop within one batch, then wait for the thread; never terminate()
            self._drop_session()
        settings = self.panel.settings()
        if self._persist and settings is not None:
            self._save_settings(settings)
        self.plots.timer.stop()
        self.follow_timer.stop()
        self.runs_panel.timer.stop()
        super().closeEvent(event)

    # -- worker signals (GUI thread) --------------------------------------------------------------
    def _on_log_opened(self, path: Path) -> None:
        self._set_current_run(path)
        self.runs_panel.refresh()
        self.runs_panel.select(path)

    def _on_run_started(self, started: RunStarted) -> None:
        self.plots.start_run(started.presentations, started.rotation_dimensions, started.expert_names)
        self.status.show_started(started)
        requested = "" if started.requested_device in ("auto", started.device) else \
            f" (requested {started.requested_device})"
        self.device_description = f"{started.device}{requested}"
        self.status.show_notice(f"Training on {started.device}: {started.parameters:,} parameters, "
                                f"data: {started.data_source}")

    def _on_metrics(self, records: list[BatchRecord | EvalRecord]) -> None:
        self.plots.append(records)
        batches = [r for r in records if isinstance(r, BatchRecord)]
        if batches:
            self.status.show_batch(batches[-1])

    def _on_mode_changed(self, change: ModeChange) -> None:
        self.plots.add_mode_change(change)
        self.panel.set_raw(*MODE_FIELD, Mode(change.mode))
        self.panel.set_raw(*PENALTY_FIELD, change.penalty_weight)

    def _on_event(self, event: RunEvent) -> None:
        if event.kind in ("paused", "resumed"):
            self._set_paused(event.kind == "paused")  # the trainer also pauses itself on a non-finite loss
        if event.kind == "device_fallback":
            self.device_description += f": {event.message}"
        # The alert waits for the pause that follows the report, so that its choices act on a
        # trainer that has really paused.
        if event.kind == "nonfinite_loss":
            self._nonfinite, self._good_checkpoint = event, 0
        elif event.kind == "good_checkpoint":
            self._good_checkpoint = event.step
        elif event.kind == "paused" and self._nonfinite is not None:
            self._alert_nonfinite(self._nonfinite, self._good_checkpoint)
            self._nonfinite = None
        self.status.show_event(event)

    def _alert_nonfinite(self, report: RunEvent, good_checkpoint: int) -> None:
        """The trainer has paused itself: say where and what went non-finite, and offer the ways on."""
        settings = self.panel.settings()  # the run's own: the panel is locked while it trains
        rate = settings.run.learning_rate if settings is not None else 0.0
        box = NonFiniteAlert(report.message, report.step, good_checkpoint, rate, parent=self)
        box.chosen.connect(lambda choice: self._on_nonfinite_choice(choice, good_checkpoint))
        box.open()
        self.nonfinite_alert = box

    def _on_nonfinite_choice(self, choice: str, good_checkpoint: int) -> None:
        if self.session is None:
            return
        if choice == "continue":
            if self._paused:
                self.toggle_pause()
            return
        if choice == "lower":
            run, settings = self.current_run, self.panel.settings()
            if good_checkpoint and run is not None:
                self._after_session = lambda: self.resume_run(run, learning_rate_factor=LOWER_FACTOR)
            elif settings is not None:
                lowered = with_lower_learning_rates(settings, LOWER_FACTOR)
                self._after_session = lambda: (self.panel.set_settings(lowered), self.start_run())
        self.stop_run()

    def _on_failed(self, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Critical, "Training failed", message, parent=self)
        box.open()  # non-blocking; the plotted data stays for inspection
        self.error_box = box
        self.status.show_notice(f"Training failed: {message}")

    def _on_finished(self, finished: RunFinished) -> None:
        verb = {"finished": "finished", "stopped": "stopped"}.get(finished.status, finished.status)
        self.status.show_notice(f"Run {verb} after {finished.step} steps")

    def _on_session_ended(self) -> None:
        if self.session is not None:
            # `finished` is emitted from the thread just before it ends: wait for that last moment.
            self.session.worker_thread.wait()
            self._drop_session()
            self.runs_panel.protected.clear()
            self.runs_panel.refresh()
        action, self._after_session = self._after_session, None
        if action is not None:
            action()

    def _drop_session(self) -> None:
        session, self.session = self.session, None
        session.deleteLater()
        self._paused = self._stopping = False
        self.toolbar.set_pause_label(False)
        self._update_actions()

    # -- runs on disk: open, follow, compare -------------------------------------------------------
    def ask_open_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open run", str(paths.runs_dir()))
        if folder:
            self.open_run(Path(folder))

    def open_run(self, path: Path) -> bool:
        """Show a run directory's plots. A run another process is still writing is followed live."""
        path = Path(path)
        if self.session is not None:
            if path != self.current_run:
                self._warn("Cannot open the run", "A run is training; stop it before opening another. To see "
                                                  "runs together, tick them in the Runs panel.")
            return path == self.current_run
        try:
            meta = read_meta(path)
        except RunLogError:
            meta = None  # load_run says what is wrong and plots what it can
        if meta is not None and effective_status(meta) == "running":
            return self._follow(path, meta)
        opening = OpenProgress(self, path.name)
        try:
            run = load_run(path, opening.progress, opening.cancelled)
        except RunLogError as exc:
            self._warn("Cannot open the run", str(exc))
            return False
        except ReadCancelled:
            self.status.show_notice(f"Opening {path.name} was cancelled")
            return False
        finally:
            opening.close()
        self._stop_following()
        self.plots.start_run(run.shape.presentations, run.shape.rotation_dimensions, run.shape.expert_names)
        self.status.reset()
        self.status.show_total(run.total_steps)
        self.plots.load_columns(run.columns)
        if len(run.columns):
            self.status.show_batch(run.columns.batch(len(run.columns) - 1, run.shape.presentations or None))
        self._set_current_run(path, run.status)
        self._set_notes(run.notes)
        if not len(run.columns):
            self.status.show_notice(f"{run.name}: no batches recorded yet")
        self.runs_panel.select(path)
        return True

    def _follow(self, path: Path, meta: dict) -> bool:
        self._stop_following()
        try:
            shape = shape_from_meta(meta)
        except (KeyError, TypeError, ValueError):
            self._warn("Cannot follow the run", f"{path / 'meta.json'}: no usable model settings")
            return False
        self._tail, self._tail_shape = MetricsTail(path), shape
        try:  # until a new record arrives, the trainer was last heard from when the file last changed
            self._last_record_at = (path / METRICS_FILE).stat().st_mtime
        except OSError:
            self._last_record_at = time.time()
        self._catching_up = True  # the first poll reads the run's history: no sign of life
        self.plots.start_run(shape.presentations, shape.rotation_dimensions, shape.expert_names)
        self.status.reset()
        self.status.show_total(meta.get("total_steps") or meta["settings"]["run"].get("steps"))
        self._set_current_run(path, "running")
        self._set_notes([])
        self.poll_followed_run()
        self._catching_up = False
        if self._tail is not None:
            self.follow_timer.start()
        self._update_actions()
        self.runs_panel.select(path)
        return True

    def poll_followed_run(self) -> None:
        """Plot what the followed run has written since the last poll; stop when it has ended."""
        tail, path = self._tail, self.current_run
        if tail is None or path is None:
            return
        try:
            status = effective_status(read_meta(path))  # read before the records: none is missed at the end
        except RunLogError as exc:
            status = None
            self._set_notes([str(exc)])
        columns, reset = tail.poll_columns()  # columns, not an object per batch: a long run's history
        if reset:  # a resume superseded records: plot the run again as it now stands
            shape = self._tail_shape
            self.plots.start_run(shape.presentations, shape.rotation_dimensions, shape.expert_names)
        if len(columns) or len(columns.eval_step) or columns.mode_changes or columns.events:
            self.plots.load_columns(columns)
            if len(columns):
                self.status.show_batch(columns.batch(len(columns) - 1, self._tail_shape.presentations or None))
            if not self._catching_up:
                self._last_record_at = time.time()
            self._confirmed([*columns.mode_changes, *columns.events])
        if status == "running" or status is None and (path / METRICS_FILE).exists():
            self.status.show_run_state(path.name, "running")
            silent = time.time() - self._last_record_at
            self.status.show_following(
                "paused" if self._paused else "alive" if silent <= self._stall_after_s else "stalled", silent)
            return
        notes = [TORN_TAIL_NOTE] if tail.incomplete_tail else []
        if tail.skipped_lines:
            notes.append(f"{tail.skipped_lines} line(s) of metrics.jsonl are not JSON; they were skipped")
        self._stop_following()
        self.status.show_run_state(path.name, status or "unreadable")
        self._set_notes(notes)
        self.status.show_notice(f"{path.name} has ended: {status or 'unreadable'}" + (
            f" ({'; '.join(notes)})" if notes else ""))
        self.runs_panel.refresh()

    def _stop_following(self) -> None:
        self.follow_timer.stop()
        self._tail = self._tail_shape = None
        self.status.show_following(None)
        if self.session is None:
            self._set_paused(False)
        self._update_actions()

    def _confirmed(self, records: list[LoggedRecord]) -> None:
        """The followed trainer's answers to commands: the toolbar shows what it actually does."""
        for record in records:
            if isinstance(record, ModeChange):
                self.toolbar.set_mode(Mode(record.mode))
            elif isinstance(record, RunEvent) and record.kind in ("paused", "resumed"):
                self._set_paused(record.kind == "paused")

    def _send_command(self, command: Command) -> bool:
        """Steer the followed run: append the command to its control file; the trainer applies it
        between two batches and its records confirm it (the plots then mark a mode change)."""
        path = self.current_run
        try:
            append_command(path, command, sender="geogui")
        except OSError as exc:
            self._warn("Cannot steer the run", f"{path}: the control file cannot be written ({exc.strerror or exc})")
            return False
        self.status.show_notice(f"Sent to {path.name}: {describe(command)}; it applies between two batches")
        return True

    @property
    def following(self) -> bool:
        return self._tail is not None

    def _set_current_run(self, path: Path | None, status: str | None = None) -> None:
        self.current_run = path
        self.setWindowTitle(f"{path.name} — geogui" if path is not None else "geogui")
        self.plots.run_label = path.name if path is not None else ""  # named in the plots' readout and data
        self.status.show_run_state("" if path is None else path.name, status)
        self.runs_panel.protected = {path} if self.session is not None and path is not None else set()
        self._update_overlays()

    def _set_notes(self, notes: list[str]) -> None:
        self.notes = list(notes)
        self.status.run_state.setToolTip("\n".join(notes) or "The run shown in the plots")
        if notes:
            self.status.show_notice("; ".join(notes))

    def _update_overlays(self) -> None:
        """One overlay per ticked run: the current run is the plots' own (live) series, the others are
        read from disk, again only when their metrics.jsonl has changed."""
        overlays = []
        for path in self.runs_panel.ticked():
            if path == self.current_run:
                overlays.append(Overlay(path.name, None))
                continue
            series = self._overlay_series(path)
            if series is not None:
                overlays.append(Overlay(path.name, series))
        for path in [p for p in self._overlay_cache if p not in self.runs_panel.ticked()]:
            del self._overlay_cache[path]
        if (overlays if len(overlays) >= 2 else []) != self.plots.overlays:
            self.plots.set_overlays(overlays)

    def _overlay_series(self, path: Path) -> RunSeries | None:
        try:
            stat = (path / METRICS_FILE).stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = (0, 0)
        cached = self._overlay_cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            series = load_run(path).series(self.plots.smoothing.value())
        except RunLogError as exc:
            self.status.show_notice(f"Not overlaid: {exc}")
            return None
        self._overlay_cache[path] = (stamp, series)
        return series

    def _on_run_renamed(self, old: Path, new: Path) -> None:
        self._overlay_cache.pop(old, None)
        if old == self.current_run:
            self._set_current_run(new, self.runs_panel.info(new).status if self.runs_panel.info(new) else None)

    def _on_run_deleted(self, path: Path) -> None:
        self._overlay_cache.pop(path, None)
        if path == self.current_run:
            self._set_current_run(None)
        self.status.show_notice(f"Deleted {path.name}")

    def _for_selected(self, action) -> None:
        path = self.runs_panel.selected_path()
        if path is None:
            self.status.show_notice("Select a run in the Runs panel first")
            return
        action(path)

    # -- export -----------------------------------------------------------------------------------
    def export_source(self) -> Path | None:
        """The run File → Export Run… writes: the one selected in the Runs panel, else the current run."""
        return self.runs_panel.selected_path() or self.current_run

    def ask_export_run(self) -> None:
        run = self.export_source()
        if run is None:
            self._warn("Nothing to export", "Open a run, or select one in the Runs panel, first.")
            return
        out, chosen = QFileDialog.getSaveFileName(self, f"Export run {run.name}", str(Path.home() / f"{run.name}.csv"),
                                                  ";;".join(RUN_EXPORT_FILTERS))
        if out:
            self.export_run_to(_with_suffix(Path(out), RUN_EXPORT_FILTERS.get(chosen, ".csv")), run)

    def export_run_to(self, out: Path, run: Path | None = None) -> bool:
        """CSV / JSONL / summary (.md, .json) by the suffix of `out`; a failure is a message, not a crash."""
        run = run or self.export_source()
        if run is None:
            self._warn("Nothing to export", "Open a run, or select one in the Runs panel, first.")
            return False
        try:
            report = export_run(run, Path(out))
        except (ExportError, RunLogError, OSError) as exc:
            self._warn("Export failed", " ".join(str(exc).split()))
            return False
        self.status.show_notice(f"Exported {run.name}: {report}")
        return True

    def ask_export_plots(self, plot=None, name: str | None = None) -> None:
        stem = self.current_run.name if self.current_run is not None else "geogui"
        title = f"Export plot {name}" if plot is not None else "Export all plots (one file per tab)"
        out, chosen = QFileDialog.getSaveFileName(self, title, str(Path.home() / f"{stem}.png"),
                                                  ";;".join(PLOT_EXPORT_FILTERS))
        if out:
            self.export_plots_to(_with_suffix(Path(out), PLOT_EXPORT_FILTERS.get(chosen, ".png")), plot)

    def ask_export_tensorboard(self) -> None:
        run = self.export_source()
        if not tensorboard_available():
            self._warn("TensorBoard is not installed", TENSORBOARD_INSTALL_HINT)
            return
        if run is None:
            self._warn("Nothing to export", "Open a run, or select one in the Runs panel, first.")
            return
        logdir = QFileDialog.getExistingDirectory(self, f"TensorBoard log directory for {run.name}", str(Path.home()))
        if logdir:
            self.export_tensorboard_to(Path(logdir), run)

    def export_tensorboard_to(self, logdir: Path, run: Path | None = None) -> bool:
        """Write the run as event files in LOGDIR/<run name>/ (`tensorboard --logdir LOGDIR` shows it)."""
        run = run or self.export_source()
        try:
            report = export_run(run, Path(logdir), "tensorboard")
        except (ExportError, RunLogError, OSError) as exc:
            self._warn("Export failed", " ".join(str(exc).split()))
            return False
        self.status.show_notice(f"Exported {run.name} for TensorBoard: {report}")
        return True

    def export_plots_to(self, out: Path, plot=None) -> list[Path]:
        """One plot, or every tab as its own file (`<name>-<tab>.png`), as PNG or SVG by the suffix."""
        try:
            written = self.plots.export_image(Path(out), plot)
        except ExportTargetError as exc:
            self._warn("Export failed", str(exc))
            return []
        self.status.show_notice("Exported " + ", ".join(path.name for path in written))
        return written

    def _warn(self, title: str, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, parent=self)
        box.open()  # non-blocking, like the error box
        self.warning_box = box
        self.status.show_notice(message)

    # -- mode and penalty weight: toolbar <-> Run panel <-> trainer --------------------------------
    def _on_mode_chosen(self, mode: Mode) -> None:
        if self.following:
            self._send_command(SetMode(mode=mode))
            return
        self.panel.set_raw(*MODE_FIELD, mode)
        if self.session is not None:
            self.session.request_mode(mode)

    def _on_penalty_entered(self, text: str) -> None:
        if self.following:
            try:
                weight = SetPenaltyWeight(penalty_weight=text)
            except ValidationError as exc:
                self.toolbar.show_penalty_error(describe_validation_error(exc))
                return
            self.toolbar.show_penalty_error(None)
            self._send_command(weight)
            return
        self.panel.set_raw(*PENALTY_FIELD, text)
        settings = self.panel.settings()
        # During a run the panel holds the run's (valid) settings, so None here means this value is bad.
        if self.session is not None and settings is not None:
            self.session.request_penalty_weight(settings.run.penalty_weight)

    def _mirror_panel_in_toolbar(self) -> None:
        self.toolbar.set_mode(self.panel.editor(*MODE_FIELD).raw_value())
        penalty = self.panel.editor(*PENALTY_FIELD).raw_value()
        if self.toolbar.penalty_edit.text().strip() != penalty:
            self.toolbar.penalty_edit.setText(penalty)
        self.toolbar.show_penalty_error(self.panel.errors().get(".".join(PENALTY_FIELD)))

    def _set_paused(self, paused: bool) -> None:
        self._paused = paused
        self.toolbar.set_pause_label(paused)

    def _update_actions(self) -> None:
        idle = self.session is None
        self.toolbar.start_action.setEnabled(idle and self.panel.is_valid())
        steerable = self.following or not idle and not self._stopping  # a followed run: its control file
        self.toolbar.pause_action.setEnabled(steerable)
        self.toolbar.stop_action.setEnabled(steerable)
        # A running trainer cannot change its model or data; only mode and penalty weight are live.
        self.panel.setEnabled(idle)
        self.presets.setEnabled(idle)

    def _save_settings(self, settings: Settings) -> None:
        try:
            saved = settings_store.save_settings(settings)
        except OSError as exc:
            self.status.show_notice(f"Settings not saved: {exc}")
            return
        if saved.notice:
            self.status.show_notice(saved.notice)


def with_lower_learning_rates(settings: Settings, factor: float) -> Settings:
    """Both learning rates times `factor`, validated (ValidationError if that leaves their bounds)."""
    data = settings.model_dump()
    data["run"]["learning_rate"] *= factor
    data["run"]["rotation_learning_rate"] *= factor
    return Settings.model_validate(data)


def _with_suffix(path: Path, default: str) -> Path:
    return path if path.suffix else path.with_suffix(default)

