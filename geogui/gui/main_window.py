"""The main window: settings dock on the left, plots in the middle, run toolbar on top, status below.

It wires the parts together and owns the run's life cycle: Start builds a TrainingSession, the
worker's signals feed the plots and the status bar, and closing the window mid-run stops the trainer
and waits for its thread (the run log is closed as "stopped" before the window goes away).
"""

from __future__ import annotations

import platform
from importlib import metadata

from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMessageBox, QVBoxLayout, QWidget

from geogui import __version__, settings_store
from geogui.engine.metrics import BatchRecord, EvalRecord, ModeChange, RunEvent, RunFinished, RunStarted
from geogui.gui.plots import PlotBoard
from geogui.gui.presets import PresetBar
from geogui.gui.run_toolbar import RunToolbar
from geogui.gui.settings_panel import SettingsPanel
from geogui.gui.status_bar import RunStatusBar
from geogui.gui.worker import METRICS_INTERVAL_S, TrainingSession
from geogui.settings import Mode, Settings

# The two settings the toolbar edits live too; they mirror these fields of the Run panel.
MODE_FIELD = ("run", "mode")
PENALTY_FIELD = ("run", "penalty_weight")


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings, notice: str | None = None, persist: bool = True,
                 metrics_interval_s: float = METRICS_INTERVAL_S) -> None:
        super().__init__()
        self.setWindowTitle("geogui")
        self.resize(1500, 950)
        self._persist = persist  # False for one-off sessions (--settings, --screenshot)
        self._metrics_interval_s = metrics_interval_s
        self.session: TrainingSession | None = None
        self._paused = False
        self._stopping = False
        self.error_box: QMessageBox | None = None
        self.about_box: QMessageBox | None = None

        self.plots = PlotBoard()
        self.setCentralWidget(self.plots)
        self.panel = SettingsPanel(settings)
        self.presets = PresetBar(self.panel.settings)
        self.dock = self._build_dock()
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

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
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

        view_menu = bar.addMenu("&View")
        toggle_dock = self.dock.toggleViewAction()
        toggle_dock.setMenuRole(QAction.MenuRole.NoRole)  # its text is "Settings": keep it out of Preferences
        view_menu.addAction(toggle_dock)

        help_menu = bar.addMenu("&Help")
        about = help_menu.addAction("About geogui", self.show_about)
        about.setMenuRole(QAction.MenuRole.AboutRole)

    def show_about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "About geogui", f"<b>geogui {__version__}</b>", parent=self)
        box.setInformativeText(about_text())
        box.open()  # not exec(): never block the event loop while a run is plotting
        self.about_box = box

    # -- run life cycle ---------------------------------------------------------------------------
    def start_run(self) -> bool:
        settings = self.panel.settings()
        if settings is None or self.session is not None:
            return False
        if self._persist:
            self._save_settings(settings)
        self.plots.start_run(settings.model.presentations, settings.model.rotation_dimensions)
        self.status.reset()
        session = TrainingSession(settings, self._metrics_interval_s, parent=self)
        worker = session.worker
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
        return True

    def toggle_pause(self) -> None:
        if self.session is None or self._stopping:
            return
        if self._paused:
            self.session.resume()
        else:
            self.session.pause()
        self._set_paused(not self._paused)

    def stop_run(self) -> None:
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
        super().closeEvent(event)

    # -- worker signals (GUI thread) --------------------------------------------------------------
    def _on_run_started(self, started: RunStarted) -> None:
        self.plots.start_run(started.presentations, started.rotation_dimensions, started.expert_names)
        self.status.show_started(started)
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
        self.status.show_event(event)

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

    def _drop_session(self) -> None:
        session, self.session = self.session, None
        session.deleteLater()
        self._paused = self._stopping = False
        self.toolbar.set_pause_label(False)
        self._update_actions()

    # -- mode and penalty weight: toolbar <-> Run panel <-> trainer --------------------------------
    def _on_mode_chosen(self, mode: Mode) -> None:
        self.panel.set_raw(*MODE_FIELD, mode)
        if self.session is not None:
            self.session.request_mode(mode)

    def _on_penalty_entered(self, text: str) -> None:
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
        self.toolbar.pause_action.setEnabled(not idle and not self._stopping)
        self.toolbar.stop_action.setEnabled(not idle and not self._stopping)
        # A running trainer cannot change its model or data; only mode and penalty weight are live.
        self.panel.setEnabled(idle)
        self.presets.setEnabled(idle)

    def _save_settings(self, settings: Settings) -> None:
        try:
            settings_store.save_settings(settings)
        except OSError as exc:
            self.status.show_notice(f"Settings not saved: {exc}")


def about_text() -> str:
    """Versions for the About box. torch's comes from package metadata: importing it here would put
    torch on the GUI thread."""
    import pyqtgraph
    import PySide6

    def installed(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return (
        "Train a Mixture-of-Experts language model with Geometric Constrained Learning and watch "
        "what each training mode costs, live.<br><br>"
        f"torch {installed('torch')}<br>Qt {qVersion()} (PySide6 {PySide6.__version__})<br>"
        f"pyqtgraph {pyqtgraph.__version__}<br>numpy {installed('numpy')}<br>"
        f"Python {platform.python_version()}"
    )
