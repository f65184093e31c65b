"""The main window: settings and runs docks on the left, plots in the middle, run toolbar on top,
status below.

It lays the parts out and wires them: the run controls (`run_actions`) go to the run controller,
which owns the current run; the controller's reports become the window's title, dialogs and enabled
actions; the runs ticked in the Runs panel are overlaid (`compared_runs`). Closing the window mid-run
stops the trainer and waits for its thread (the run log is closed as "stopped" before the window goes).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMessageBox, QVBoxLayout, QWidget

from geogui import paths
from geogui.engine.metrics import RunEvent
from geogui.gui.app_icon import app_icon
from geogui.gui.compared_runs import ComparedRuns
from geogui.gui.dialog_folders import DialogKind, ask_folder
from geogui.gui.field_keys import FieldKeys
from geogui.gui.mode_comparison_runner import ModeComparison
from geogui.gui.plots.board import PlotBoard
from geogui.gui.plots.start_hint import start_hint_text
from geogui.gui.run_actions import RunActions
from geogui.gui.run_exports import RunExports
from geogui.gui.run_controller import FOLLOW_MS, STALL_AFTER_S, RunController
from geogui.gui.samples.tab import TITLE as SAMPLES_TITLE
from geogui.gui.samples.tab import SamplesTab
from geogui.gui.settings_form.panel import SettingsPanel
from geogui.gui.steering import MODE_FIELD, PENALTY_FIELD
from geogui.gui.widgets.about_dialog import AboutDialog
from geogui.gui.widgets.nonfinite_alert import NonFiniteAlert
from geogui.gui.widgets.presets import PresetBar
from geogui.gui.widgets.runs_panel import REFRESH_MS, RunsPanel
from geogui.gui.widgets.shortcuts_dialog import ShortcutsDialog
from geogui.gui.widgets.status_bar import RunStatusBar
from geogui.gui.widgets.toolbar import RunToolbar
from geogui.gui.worker import METRICS_INTERVAL_S, TrainingSession
from geogui.settings import Settings

PREFERRED_SIZE = (1500, 950)
SCREEN_MARGIN = 40  # px left free around the window on a small screen (window frame, panels)


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings, notice: str | None = None, persist: bool = True,
                 metrics_interval_s: float = METRICS_INTERVAL_S, follow_ms: int = FOLLOW_MS,
                 runs_refresh_ms: int = REFRESH_MS, stall_after_s: float = STALL_AFTER_S) -> None:
        super().__init__()
        self.setWindowTitle("geogui")
        self.setWindowIcon(app_icon())
        self._persist = persist  # False for one-off sessions (--settings, --screenshot)
        self.error_box: QMessageBox | None = None
        self.warning_box: QMessageBox | None = None
        self.about_box: AboutDialog | None = None
        self.shortcuts_box: ShortcutsDialog | None = None
        self.nonfinite_alert: NonFiniteAlert | None = None

        self.plots = PlotBoard()
        self.setCentralWidget(self.plots)
        self.panel = SettingsPanel(settings)
        self.presets = PresetBar(self.panel.settings)
        self.dock = self._build_dock()
        self.runs_panel = RunsPanel(paths.runs_dir, runs_refresh_ms)
        self.runs_dock = self._build_runs_dock()
        self.run_actions = RunActions(self)
        self.toolbar = RunToolbar(self.run_actions, self)
        self.addToolBar(self.toolbar)
        self.status = RunStatusBar(self)
        self.setStatusBar(self.status)
        self.controller = RunController(self, self.plots, self.status, self.panel, self.runs_panel,
                                        settings.device.device, persist, metrics_interval_s, follow_ms, stall_after_s)
        self.exports = RunExports(self, self.plots, self.runs_panel, self.status, lambda: self.current_run, self._warn)
        self.compared = ComparedRuns(self.plots, self.runs_panel, self.status.show_notice)
        self.mode_comparison = ModeComparison(self, self.controller, self.runs_panel, self.panel.settings)
        self.samples = SamplesTab(lambda: self.controller.session)
        self.plots.add_page(self.samples, SAMPLES_TITLE)
        self._build_menus()
        self._wire_controls()
        self._wire_panels()
        self._wire_field_keys()

        self._mirror_panel_in_toolbar()
        self._show_start_hint()
        self._update_actions()
        self._fit_to_screen()
        if notice:
            self.status.show_notice(notice)

    # -- layout -----------------------------------------------------------------------------------
    def _fit_to_screen(self) -> None:
        """Open at a comfortable size that fits the screen: 1500×950 where there is room, else the
        screen's free area less a margin (a 1280×720 laptop would otherwise hide the status bar and
        the window's bottom edge below the screen)."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        free = screen.availableGeometry() if screen is not None else None
        if free is None or free.isEmpty():
            self.resize(*PREFERRED_SIZE)
            return
        width = min(PREFERRED_SIZE[0], free.width() - SCREEN_MARGIN)
        height = min(PREFERRED_SIZE[1], free.height() - SCREEN_MARGIN)
        self.resize(max(width, self.minimumSizeHint().width()), max(height, self.minimumSizeHint().height()))
        frame = self.frameGeometry()
        frame.moveCenter(free.center())
        self.move(frame.topLeft())

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
        self._build_file_menu(bar.addMenu("&File"))
        run_menu = bar.addMenu("&Run")
        for action in (self.run_actions.start, self.run_actions.pause, self.run_actions.stop):
            run_menu.addAction(action)
        run_menu.addSeparator()
        for action in self.run_actions.modes.values():
            run_menu.addAction(action)
        run_menu.addSeparator()
        run_menu.addAction(self.run_actions.resume_selected)
        run_menu.addSeparator()
        run_menu.addAction(self.mode_comparison.action)

        view_menu = bar.addMenu("&View")
        toggle_dock = self.dock.toggleViewAction()
        toggle_dock.setMenuRole(QAction.MenuRole.NoRole)  # its text is "Settings": keep it out of Preferences
        view_menu.addAction(toggle_dock)
        toggle_runs = self.runs_dock.toggleViewAction()
        toggle_runs.setMenuRole(QAction.MenuRole.NoRole)
        view_menu.addAction(toggle_runs)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction("Keyboard Shortcuts", self.show_shortcuts).setMenuRole(QAction.MenuRole.NoRole)
        about = help_menu.addAction("About geogui", self.show_about)
        about.setMenuRole(QAction.MenuRole.AboutRole)

    def _build_file_menu(self, file_menu) -> None:
        # Without NoRole, Qt's text heuristics may move such items into the macOS application menu.
        self.open_run_action = open_run = file_menu.addAction("Open Run…", self.ask_open_run)
        open_run.setShortcut(QKeySequence.StandardKey.Open)
        open_run.setMenuRole(QAction.MenuRole.NoRole)
        file_menu.addSeparator()
        self.exports.add_menu_entries(file_menu)
        file_menu.addSeparator()
        file_menu.addAction("Save Preset…", self.presets.ask_and_save).setMenuRole(QAction.MenuRole.NoRole)
        file_menu.addSeparator()
        quit_action = file_menu.addAction("Quit", self.close)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)

    # -- wiring -----------------------------------------------------------------------------------
    def _wire_controls(self) -> None:
        actions, controller = self.run_actions, self.controller
        actions.start.triggered.connect(self.start_run)
        actions.pause.triggered.connect(controller.toggle_pause)
        actions.stop.triggered.connect(controller.stop)
        actions.mode_chosen.connect(controller.choose_mode)
        actions.penalty_entered.connect(controller.enter_penalty)
        actions.penalty_refused.connect(lambda reason: self.status.show_notice(f"Penalty weight refused: {reason}"))
        actions.resume_selected.triggered.connect(lambda: self._for_selected(self.resume_run))
        controller.state_changed.connect(lambda _state: self._update_actions())
        self.mode_comparison.runner.finished.connect(lambda _summary: self._update_actions())
        self.mode_comparison.runner.ended_early.connect(lambda _why: self._update_actions())
        controller.paused_changed.connect(actions.set_paused)
        controller.mode_confirmed.connect(actions.set_mode)
        controller.penalty_error.connect(actions.show_penalty_error)
        controller.current_run_changed.connect(self._on_current_run_changed)
        controller.current_run_changed.connect(self.samples.show_run)
        self.samples.message.connect(self.status.show_notice)
        controller.warning.connect(self._warn)
        controller.failed.connect(self._on_failed)
        controller.nonfinite_paused.connect(self._alert_nonfinite)

    def _wire_panels(self) -> None:
        self.panel.settings_edited.connect(self._mirror_panel_in_toolbar)
        self.panel.settings_edited.connect(self._show_start_hint)
        self.panel.validity_changed.connect(lambda _valid: (self._update_actions(), self._show_start_hint()))
        self.presets.preset_loaded.connect(self.panel.set_settings)
        self.presets.message.connect(self.status.show_notice)
        self.runs_panel.open_requested.connect(self.open_run)
        self.runs_panel.resume_requested.connect(self.resume_run)
        self.runs_panel.ticked_changed.connect(lambda _paths: self._update_overlays())
        self.runs_panel.refreshed.connect(self._update_overlays)
        self.runs_panel.renamed.connect(self._on_run_renamed)
        self.runs_panel.deleted.connect(self._on_run_deleted)
        self.runs_panel.message.connect(self.status.show_notice)

    def _wire_field_keys(self) -> None:
        self.field_keys = FieldKeys(self.plots, self.status.show_notice, self.run_actions.pause, self)
        self.field_keys.watch(self.run_actions.penalty, numeric=True, leave_on_enter=True)
        for field, numeric in self.panel.text_fields():
            self.field_keys.watch(field, numeric)

    def _update_actions(self) -> None:
        state = self.controller.state
        self.run_actions.enable(start=state.may_start and self.panel.is_valid(), steer=state.steerable,
                                why_no_start=self.controller.why_no_start())
        self.mode_comparison.action.setEnabled(state.may_start and self.panel.is_valid())
        # Each run of a comparison trains one mode at one weight from start to end: both stay put.
        fixed = self.mode_comparison.runner.active
        self.run_actions.mode_group.setEnabled(not fixed)
        self.run_actions.penalty.setEnabled(not fixed)
        # A running trainer cannot change its model or data; only mode and penalty weight are live.
        self.panel.setEnabled(not state.trains_here)
        self.presets.setEnabled(not state.trains_here)

    def _mirror_panel_in_toolbar(self) -> None:
        self.run_actions.set_mode(self.panel.editor(*MODE_FIELD).raw_value())
        self.run_actions.set_penalty_text(self.panel.editor(*PENALTY_FIELD).raw_value())
        self.run_actions.show_penalty_error(self.panel.errors().get(".".join(PENALTY_FIELD)))

    def _show_start_hint(self) -> None:
        data = self.panel.editor("data", "path").raw_value()
        self.plots.start_hint.show_text(
            start_hint_text(self.run_actions.start, self.open_run_action, data, self.panel.is_valid()))

    def _on_current_run_changed(self, path: Path | None) -> None:
        self.setWindowTitle(f"{path.name} — geogui" if path is not None else "geogui")
        self._update_overlays()

    def _update_overlays(self) -> None:
        self.compared.update(self.controller.current_run)

    def _on_run_renamed(self, old: Path, new: Path) -> None:
        self.compared.forget(old)
        if old == self.current_run:
            info = self.runs_panel.info(new)
            self.controller.set_current_run(new, info.status if info else None)

    def _on_run_deleted(self, path: Path) -> None:
        self.compared.forget(path)
        if path == self.current_run:
            self.controller.set_current_run(None)
            self.plots.clear_run()
        self.status.show_notice(f"Deleted {path.name}")

    def _for_selected(self, action) -> None:
        path = self.runs_panel.selected_path()
        if path is None:
            self.status.show_notice("Select a run in the Runs panel first")
            return
        action(path)

    # -- the run, as callers reach it through the window ------------------------------------------
    def start_run(self) -> bool:
        return self.controller.start()

    def resume_run(self, path: Path, learning_rate_factor: float = 1.0) -> bool:
        return self.controller.resume(path, learning_rate_factor)

    def open_run(self, path: Path) -> bool:
        return self.controller.open(path)

    def stop_run(self) -> None:
        self.controller.stop()

    @property
    def session(self) -> TrainingSession | None:
        return self.controller.session

    @property
    def current_run(self) -> Path | None:
        return self.controller.current_run

    @property
    def notes(self) -> list[str]:
        return self.controller.notes

    @property
    def following(self) -> bool:
        return self.controller.following

    @property
    def _paused(self) -> bool:  # read by the soak benchmark
        return self.controller.paused

    # -- dialogs ----------------------------------------------------------------------------------
    def show_shortcuts(self) -> None:
        box = ShortcutsDialog(self)
        box.open()  # not exec(), like About
        self.shortcuts_box = box

    def show_about(self) -> None:
        box = AboutDialog(self.controller.device_description, paths.config_dir(), paths.runs_dir(), parent=self)
        box.open()  # not exec(): never block the event loop while a run is plotting
        self.about_box = box

    def _warn(self, title: str, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, parent=self)
        box.open()  # non-blocking, like the error box
        self.warning_box = box
        self.status.show_notice(message)

    def _on_failed(self, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Critical, "Training failed", message, parent=self)
        box.open()  # non-blocking; the plotted data stays for inspection
        self.error_box = box
        self.status.show_notice(f"Training failed: {message}")

    def _alert_nonfinite(self, report: RunEvent, good_checkpoint: int) -> None:
        """The trainer has paused itself: say where and what went non-finite, and offer the ways on."""
        settings = self.panel.settings()  # the run's own: the panel is locked while it trains
        rate = settings.run.learning_rate if settings is not None else 0.0
        box = NonFiniteAlert(report.message, report.step, good_checkpoint, rate, parent=self)
        box.chosen.connect(lambda choice: self.controller.nonfinite_choice(choice, good_checkpoint))
        box.open()
        self.nonfinite_alert = box

    def ask_open_run(self) -> None:
        folder = ask_folder(self, "Open run", DialogKind.OPEN_RUN)
        if folder is not None:
            self.open_run(folder)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.controller.shutdown()
        self.samples.shutdown()
        settings = self.panel.settings()
        if self._persist and settings is not None:
            self.controller.save_settings(settings)
        self.plots.timer.stop()
        self.runs_panel.timer.stop()
        super().closeEvent(event)
