"""Run → Compare Modes…: the three runs of a mode comparison (`rundir.mode_comparison`) trained one
after another through the run controller, like any run started here (the worker thread trains,
the plots show the live run, Stop stops it), each ticked in the Runs panel once it exists so the
plots overlay them, then the summary table.

The next run starts when the controller has gone idle after one that ended well (finished, or
stopped at its wall-time budget); a Stop, a failure or a run that cannot start ends the comparison.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from geogui.gui.run_controller import RunController
from geogui.gui.steering import RunState
from geogui.gui.widgets.mode_comparison_dialogs import CompareModesDialog, ComparisonTableDialog
from geogui.gui.widgets.runs_panel import RunsPanel
from geogui.rundir.comparison_summary import ComparisonSummary, summarize_comparison, write_summary
from geogui.rundir.layout import RunLogError
from geogui.rundir.meta import RunStatus, read_meta
from geogui.rundir.mode_comparison import ComparisonBudget, ComparisonPlan, plan_comparison
from geogui.settings import Settings


class ModeComparisonRunner(QObject):
    finished = Signal(object)  # ComparisonSummary: every run ended well; comparison.md is written
    ended_early = Signal(str)  # why the comparison stopped before its last run ended

    def __init__(self, controller: RunController, runs_panel: RunsPanel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller, self.runs_panel = controller, runs_panel
        self.plan: ComparisonPlan | None = None
        self._next_leg = 0
        self._stopped = False  # the user pressed Stop during the current run
        self._ticked: set[Path] = set()
        controller.state_changed.connect(self._on_state_changed)
        runs_panel.refreshed.connect(self._tick_new_runs)

    @property
    def active(self) -> bool:
        return self.plan is not None

    def start(self, settings: Settings, budget: ComparisonBudget) -> bool:
        """Plan the three runs and start the first; False when a run trains or is followed here."""
        if self.active or not self.controller.state.may_start:
            return False
        self.plan, self._next_leg, self._stopped, self._ticked = plan_comparison(settings, budget), 0, False, set()
        for path in self.runs_panel.ticked():  # the overlay is the comparison's three runs
            self.runs_panel.set_ticked(path, False)
        return self._start_next()

    def _start_next(self) -> bool:
        plan, leg = self.plan, self.plan.legs[self._next_leg]
        self._next_leg += 1
        if not self.controller.start(leg.settings, make_driver=lambda: plan.driver(leg)):
            self._end_early(f"{leg.mode.value} could not start")
            return False
        self.controller.status.show_notice(
            f"Comparing modes ({plan.budget.describe()}): {self._next_leg} of {len(plan.legs)}, {leg.mode.value}")
        return True

    def _on_state_changed(self, state: RunState) -> None:
        if not self.active:
            return
        if state is RunState.STOPPING:
            self._stopped = True
        elif state is RunState.IDLE:  # the run's session has ended: go on once the controller is done with it
            QTimer.singleShot(0, self, self._after_run)

    def _after_run(self) -> None:
        if not self.active or self.controller.session is not None:
            return
        leg = self.plan.legs[self._next_leg - 1]
        self._tick_new_runs()
        problem = "stopped" if self._stopped else _problem(leg.run_dir)
        if problem is not None:
            self._end_early(f"{leg.mode.value} {problem}")
        elif self._next_leg < len(self.plan.legs):
            self._start_next()
        else:
            self._finish()

    def _tick_new_runs(self) -> None:
        """Tick each run of the comparison once, when its row first appears (the user may untick it)."""
        if not self.active:
            return
        listed = {run.path for run in self.runs_panel.runs()}
        for path in self.plan.run_dirs:
            if path in listed and path not in self._ticked:
                self._ticked.add(path)
                self.runs_panel.set_ticked(path)

    def _finish(self) -> None:
        plan, self.plan = self.plan, None
        try:
            summary = summarize_comparison(plan.run_dirs)
            written = write_summary(plan.group_dir, summary, title=f"Mode comparison {plan.group}")
        except (OSError, RunLogError) as exc:
            self.ended_early.emit(f"Mode comparison: the summary could not be made ({exc})")
            return
        self.controller.status.show_notice(f"Mode comparison done: {written}")
        self.finished.emit(summary)

    def _end_early(self, why: str) -> None:
        plan, self.plan = self.plan, None
        done = sum(1 for path in plan.run_dirs if path in self._ticked)
        self.ended_early.emit(f"Mode comparison ended: {why} (runs kept: {done} of {len(plan.legs)})")


def _problem(run_dir: Path) -> str | None:
    """What kept a run from ending well, or None when it finished or stopped at its budget."""
    try:
        meta = read_meta(run_dir)
    except RunLogError:
        return "did not start"
    if meta.status is RunStatus.FINISHED or (meta.status is RunStatus.STOPPED and meta.model_extra.get(
            "stopped_at_budget")):
        return None
    return meta.status.value


class ModeComparison(QObject):
    """The menu entry, its dialog, the runner and the summary table, for the window to place."""

    def __init__(self, window: QWidget, controller: RunController, runs_panel: RunsPanel,
                 settings: Callable[[], Settings | None]) -> None:
        super().__init__(window)
        self._window, self._settings = window, settings
        self.runner = ModeComparisonRunner(controller, runs_panel, self)
        self.action = QAction("Compare Modes…", window)
        self.action.setMenuRole(QAction.MenuRole.NoRole)
        self.action.setStatusTip("Train standard, geometric_fast and geometric from the same weights and seed, "
                                 "at equal steps or equal wall time, and compare them")
        self.action.triggered.connect(self.ask)
        self.dialog: CompareModesDialog | None = None
        self.table: ComparisonTableDialog | None = None
        self.runner.finished.connect(self.show_summary)
        self.runner.ended_early.connect(controller.status.show_notice)

    def ask(self) -> None:
        settings = self._settings()
        if settings is None:
            return
        self.dialog = CompareModesDialog(settings.run.steps, self._window)
        self.dialog.chosen.connect(lambda budget: self.runner.start(self._settings() or settings, budget))
        self.dialog.open()  # not exec(): the window goes on plotting behind it

    def show_summary(self, summary: ComparisonSummary) -> None:
        self.table = ComparisonTableDialog(summary, self._window)
        self.table.show()  # modeless: the overlaid plots stay in reach beside it
