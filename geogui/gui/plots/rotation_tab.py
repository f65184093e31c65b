"""The Rotation tab: the presentations' rotations and hidden states at one step, as maps, over a plot of
how alike the presentations are at every step.

The maps (`rotation_maps`) show the step under the mouse on any plot of the board (the board tells
every hovered step: `PlotBoard.step_hovered`), else the step a click on this tab's plot holds, else
the latest step, following the run live. The header over them says which. Past the map store's
capacity a step stands for a bin of steps (see `rotation_series`), and the header says which steps
and that the maps are their mean.

The plot under the maps draws, per step (per bin of the map store past its capacity), the mean over
the pairs p ≠ q of the rotation similarity (a gap in standard) and of the hidden-state similarity
(the geometric step's orthogonality term over its weight; a gap in other modes). Compared runs:
each run's mean rotation similarity; the maps still show the board's own run, and say so.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton

from geogui.gui.plotdata.rotation_series import RotationAt
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plotdata.shown_series import RunView
from geogui.gui.plots.overlays import CompareSpec
from geogui.gui.plots.plot import Plot
from geogui.gui.plots.redraw_budget import RedrawBudget
from geogui.gui.plots.rotation_maps import RotationMaps
from geogui.gui.plots.style import KEY_COLOR, TEXT_COLOR
from geogui.gui.plots.tabs import Tab

TITLE = "Presentation similarity (mean over pairs)"
ROTATION_COLOR = "#e0673b"  # the rotation learning rate's colour
HIDDEN_COLOR = "#1565c0"
HINT = "Maps at the step under the mouse on any plot; a click on the plot below holds its step"
HEADER_ROW, MAPS_ROW, PLOT_ROW = 0, 1, 2
MAPS_STRETCH, PLOT_STRETCH = 3, 2

HOVERED, HELD, LATEST = "hovered", "held", "latest"


def mean_rotation_similarity(series: RunSeries) -> np.ndarray:
    """Per row of the plots' store, the rotation similarity's mean over pairs of presentations at its step."""
    return series.rotation.pair_means_at(series.step.view())[:, 0]


def when_text(at: RotationAt, how: str) -> str:
    """Which step the maps show, in words: "at step 1,200", "held at …", "latest: …"."""
    steps = f"step {at.first:,}" if not at.binned else f"steps {at.first:,}–{at.last:,} (their mean)"
    return {HOVERED: f"at {steps}", HELD: f"held at {steps}", LATEST: f"latest: {steps}"}[how]


class RotationTab(Tab):
    title = "Rotation"

    def __init__(self, budget: RedrawBudget, x_label: str) -> None:
        self.latest_button = QPushButton("Latest")
        self.latest_button.setToolTip("Let go of the held step: the maps follow the latest step again")
        self.latest_button.setEnabled(False)
        hint = QLabel(HINT)
        hint.setStyleSheet(f"color: {KEY_COLOR}")
        super().__init__(budget, x_label, [self.latest_button, hint])
        layout = self.widget.ci
        self.header = pg.LabelItem("", color=TEXT_COLOR, size="11pt")
        layout.addItem(self.header, row=HEADER_ROW, col=0, colspan=3)
        self.maps = RotationMaps()
        self.maps.add_to(layout, MAPS_ROW)
        self.step_plot = self._add_step_plot(x_label)
        layout.layout.setRowStretchFactor(MAPS_ROW, MAPS_STRETCH)
        layout.layout.setRowStretchFactor(PLOT_ROW, PLOT_STRETCH)
        self.hovered_step: float | None = None  # under the mouse on some plot of the board
        self.held_step: float | None = None  # held by a click on the step plot
        self.shown: RotationAt | None = None  # the row the maps show
        self.max_rotation: float | None = None  # the run's bound on |angle|, when known
        self._run: RunView | None = None  # the board's own run, as last drawn
        self._comparing = False
        self._drawn_key: tuple | None = None
        self.widget.scene().sigMouseClicked.connect(self._on_click)
        self.latest_button.clicked.connect(lambda: self.hold_step(None))

    def _add_step_plot(self, x_label: str) -> Plot:
        plot = Plot(TITLE, "similarity", CompareSpec(f"{TITLE}: each run's rotations", mean_rotation_similarity),
                    legend=True)
        self.widget.ci.addItem(plot, row=PLOT_ROW, col=0, colspan=3)
        plot.setLabel("bottom", x_label)
        self.plots.append(plot)
        self.rotation_curve = plot.add_curve(pen=pg.mkPen(ROTATION_COLOR, width=2), name="rotations",
                                             connect="finite")
        self.hidden_curve = plot.add_curve(pen=pg.mkPen(HIDDEN_COLOR, width=2), name="hidden states (geometric)",
                                           connect="finite")
        return plot

    # -- the run ----------------------------------------------------------------------------------
    def start_run(self, series: RunSeries, names: tuple[str, ...]) -> None:
        presentations = series.presentations
        self.maps.set_shape([names[p] if p < len(names) else str(p + 1) for p in range(presentations)],
                            series.rotation_dimensions)
        self.hovered_step = self.held_step = self.shown = self._run = None
        self._drawn_key = None
        self.latest_button.setEnabled(False)
        self.header.setText("No batches yet")

    def set_max_rotation(self, radians: float | None) -> None:
        """The run's bound on every angle (its max_rotation setting): the angle map's colours span ±it.
        None: not known, and they span the largest |angle| of the run so far."""
        self.max_rotation = radians
        self._drawn_key = None

    # -- the step shown ---------------------------------------------------------------------------
    def show_step(self, step: float | None) -> None:
        """The step under the mouse on any plot of the board; None once the mouse has left them."""
        if step != self.hovered_step:
            self.hovered_step = step
            self._step_changed()

    def hold_step(self, step: float | None) -> None:
        """Show `step` while the mouse is on no plot; None lets go: the latest step again."""
        self.held_step = step
        self.latest_button.setEnabled(step is not None)
        self._step_changed()

    def _step_changed(self) -> None:
        if self.page.isVisible():  # only the maps change: redraw them at once, not the plot
            self._draw_maps()
        else:
            self.stale = True

    def _chosen(self) -> tuple[float | None, str]:
        if self.hovered_step is not None:
            return self.hovered_step, HOVERED
        if self.held_step is not None:
            return self.held_step, HELD
        return None, LATEST

    def _on_click(self, event) -> None:
        view = self.step_plot.getViewBox()
        if event.button() != Qt.MouseButton.LeftButton or self._run is None or \
                not view.sceneBoundingRect().contains(event.scenePos()):
            return
        run = self._run
        self.hold_step(run.series.step_at_x(run.x_kind, view.mapSceneToView(event.scenePos()).x()))

    # -- drawing ----------------------------------------------------------------------------------
    def draw(self, run: RunView) -> None:
        self._run, self._comparing = run, False
        steps, means = run.series.rotation.pair_means()
        self.step_plot.draw(self.rotation_curve, run.shown_at_steps("rotation similarity", steps, means[:, 0]))
        self.step_plot.draw(self.hidden_curve, run.shown_at_steps("hidden similarity", steps, means[:, 1]))
        self._draw_maps()

    def draw_compared(self, run: RunView) -> None:
        """While runs are compared the plot draws each run; the maps go on showing the board's own."""
        self._run, self._comparing = run, True
        self._draw_maps()

    def _draw_maps(self) -> None:
        run = self._run
        if run is None:
            return
        series = run.series
        step, how = self._chosen()
        at = series.rotation.at(step)
        key = (id(series), series.batches, None if at is None else (at.first, at.last), how, self._comparing,
               run.label)
        if key == self._drawn_key:  # the mouse moved within the same step
            return
        self._drawn_key, self.shown = key, at
        reach = self.max_rotation if self.max_rotation is not None else series.rotation.largest_angle
        self.maps.set_angle_range(reach)
        when = "" if at is None else when_text(at, how)
        self.maps.show(at, None if at is None else _mode_at(series, at.last), when)
        self._set_header(when, run.label)

    def _set_header(self, when: str, label: str) -> None:
        text = (when[:1].upper() + when[1:]) if when else "No batches yet"
        tip = ""
        if self._comparing:
            name = label or "this board's run"
            text += f" · {name} only"
            tip = f"While runs are compared the maps show one run: {name}, the board's own. The plot below " \
                  "compares every run's rotations."
        self.header.setText(text)
        self.header.setToolTip(tip)


def _mode_at(series: RunSeries, step: int) -> str | None:
    """The mode the batch at `step` (or the nearest after it) was trained in."""
    if not len(series):
        return None
    return series.mode_at(min(int(np.searchsorted(series.step.view(), step)), len(series) - 1))
