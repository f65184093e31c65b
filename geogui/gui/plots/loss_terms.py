"""The Loss terms tab: what the loss adds up, term by term, with the rotation penalty's weight under it.

The Training tab plots the loss, a sum; when it jumps on entering geometric this tab shows which
term moved. Each term is drawn as the loss is: raw faint under its smoothed curve (the board's
smoothing, restarted at every mode segment). A term its mode does not compute is a gap, not a zero
(see geogui.gui.plotdata.loss_terms); the controls row says so, and each legend name's tooltip says
what the term is in each mode. y is logarithmic at first: the terms differ by orders of magnitude
(task ~1, penalty ~1e-5). The total loss can be drawn over them. The penalty weight is a step line
in a small plot under the terms, sharing x: a steered weight is a step at its mode-change line.

Compared runs: each run's task loss (smoothed over raw), the one term every mode computes; five
terms times several runs would be a tangle of colours. And each run's penalty weight.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QCheckBox, QLabel

from geogui.gui.plotdata.loss_terms import LOSS_TERMS, LossTerm
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plotdata.shown_series import RunView
from geogui.gui.plots.loss_objective import objectives_tooltip
from geogui.gui.plots.mode_marks import mode_label
from geogui.gui.plots.overlays import CompareSpec
from geogui.gui.plots.redraw_budget import RedrawBudget
from geogui.gui.plots.style import KEY_COLOR, curve_color, faint
from geogui.gui.plots.tabs import Tab
from geogui.settings import Mode

TITLE = "Loss terms"
WEIGHT_TITLE = "Rotation penalty weight"
TOTAL_NAME = "total"
TOTAL_COLOR = "#37474f"
WEIGHT_COLOR = "#2ca02c"  # the rotation penalty's own colour
TERMS_STRETCH, WEIGHT_STRETCH = 4, 1  # the weight plot takes a fifth of the tab's height
GAP_NOTE = "A gap: that mode does not compute the term. Hover a name for what it is in each mode."

# What each term is, in the words of geogui.engine.modes (P: the presentations).
_MEANINGS = {
    "task_loss": ("Task: the cross-entropy",
                  "Standard, geometric fast: of the one routed forward pass",
                  "Geometric: of the mean prediction of {P} presentations"),
    "aux_loss": ("Load balance: the router's load-balancing loss × its weight",
                 "Standard, geometric fast: keeps the routed slots spread over the experts"),
    "penalty": ("Rotation penalty: penalty weight × mean(angles²)",
                "Geometric fast: the rotations' only gradient: it pulls them towards zero",
                "Geometric: one term of the full objective"),
    "orthogonality": ("Orthogonality: its weight × mean over tokens and pairs p ≠ q of |cos(h_p, h_q)|",
                      "Geometric: the presentations should see the data differently"),
    "specialization": ("Specialization: its weight × relu(1 − mean over tokens of Var_p(‖h_p‖))",
                       "Geometric: pushes the presentations apart in scale"),
}
TOTAL_MEANING = "Total: the loss back-propagated, the sum of the terms (the Training tab's loss)"
WEIGHT_MEANING = ("The rotation penalty's weight w (the penalty is w × mean(angles²)), a step where it was "
                  "steered. Standard keeps it without applying it.")


def term_tooltip(term: LossTerm, presentations: int) -> str:
    """What `term` is in each mode, and where it is a gap."""
    lines = [line.format(P=presentations or "the") for line in _MEANINGS[term.field]]
    if term.not_computed_in:
        modes = ", ".join(mode_label(mode.value) for mode in Mode if mode.value in term.not_computed_in)
        lines.append(f"{modes}: not computed (a gap, not a zero)")
    return "\n".join(lines)


class LossTermsTab(Tab):
    title = "Loss terms"

    def __init__(self, budget: RedrawBudget, x_label: str) -> None:
        self.total_box = QCheckBox("Total loss")
        self.total_box.setToolTip("Draw the total loss over its terms")
        self.log_box = QCheckBox("Log y")
        self.log_box.setToolTip("A log10 y axis for the terms: they differ by orders of magnitude "
                                "(a term at 0 is left out of a log view)")
        note = QLabel(GAP_NOTE)
        note.setStyleSheet(f"color: {KEY_COLOR}")
        super().__init__(budget, x_label, [self.total_box, self.log_box, note])
        task = LOSS_TERMS[0]
        self.terms_plot = self.add_plot(TITLE, "loss", CompareSpec(
            "Task loss of each run (smoothed over raw)", lambda s: s.loss_terms.view()[:, 0], smoothed=True,
            smoothed_of=lambda s: s.loss_terms_ema.view()[:, 0], name=task.name), legend=True)
        plot = self.terms_plot
        self.raw_curves: list[pg.PlotDataItem] = []
        self.smoothed_curves: list[pg.PlotDataItem] = []  # in the legend: a click hides the raw one too
        for index, term in enumerate(LOSS_TERMS):
            color = curve_color(index, len(LOSS_TERMS))
            raw = plot.add_curve(pen=pg.mkPen(faint(color)), connect="finite")
            smoothed = plot.add_curve(pen=pg.mkPen(color, width=2), name=term.name, connect="finite")
            _raw_follows(raw, smoothed)
            self.raw_curves.append(raw)
            self.smoothed_curves.append(smoothed)
        # Listed only while drawn (see _draw_total).
        self.total_raw_curve = plot.add_curve(pen=pg.mkPen(faint(TOTAL_COLOR)), connect="finite")
        self.total_curve = plot.add_curve(pen=pg.mkPen(TOTAL_COLOR, width=2), connect="finite")
        _raw_follows(self.total_raw_curve, self.total_curve)
        self.weight_plot = self.add_plot(WEIGHT_TITLE, "weight", CompareSpec(
            "Rotation penalty weight of each run", lambda s: s.penalty_weight.view()))
        # A weight holds from its batch to the next: drawn as steps, not as slopes between batches.
        self.weight_curve = self.weight_plot.add_curve(pen=pg.mkPen(WEIGHT_COLOR, width=2), stepMode="right",
                                                       connect="finite")
        self.weight_plot.titleLabel.setToolTip(WEIGHT_MEANING)
        layout = self.widget.ci.layout
        layout.setRowStretchFactor(0, TERMS_STRETCH)
        layout.setRowStretchFactor(1, WEIGHT_STRETCH)
        self.log_box.toggled.connect(plot.set_log_y)
        plot.log_y_action.toggled.connect(self.log_box.setChecked)  # the plot's menu says the same
        self.log_box.setChecked(True)
        self.total_box.toggled.connect(self._on_total_toggled)
        self._describe(0)

    def start_run(self, series: RunSeries, names: tuple[str, ...]) -> None:
        self._describe(series.presentations)

    def _describe(self, presentations: int) -> None:
        """Each legend entry's tooltip: what its term is in each mode."""
        legend = self.terms_plot.legend
        tips = {curve: term_tooltip(term, presentations) for curve, term in zip(self.smoothed_curves, LOSS_TERMS)}
        tips[self.total_curve] = TOTAL_MEANING
        for sample, label in legend.items:
            tip = tips.get(sample.item, "")
            sample.setToolTip(tip)
            label.setToolTip(tip)

    def _on_total_toggled(self, checked: bool) -> None:
        if not self.terms_plot.comparison.curves:  # while runs are compared only theirs are shown
            self.total_curve.setVisible(checked)
        self.stale = True

    def draw(self, run: RunView) -> None:
        series = run.series
        terms, smoothed = series.loss_terms.view(), series.loss_terms_ema.view()
        for index, term in enumerate(LOSS_TERMS):
            self.terms_plot.draw(self.raw_curves[index], run.shown(term.name, terms[:, index], smoothed[:, index]),
                                 smoothed_curve=self.smoothed_curves[index])
        self._draw_total(run)
        self.terms_plot.titleLabel.setToolTip(objectives_tooltip(run))
        self.weight_plot.draw(self.weight_curve, run.shown("penalty weight", series.penalty_weight.view()))

    def _draw_total(self, run: RunView) -> None:
        shown = self.total_box.isChecked()
        plot = self.terms_plot
        if not shown:  # a comparison ended shows every curve; a click on its legend entry may hide it
            self.total_curve.setVisible(False)
        listed = plot.legend.getLabel(self.total_curve) is not None
        if shown:
            series = run.series
            plot.draw(self.total_raw_curve, run.shown("loss", series.loss.view(), series.loss_ema.view()),
                      smoothed_curve=self.total_curve)
            if not listed:
                plot.legend.addItem(self.total_curve, TOTAL_NAME)
                self._describe(run.series.presentations)
        elif listed:  # hidden curves are neither fitted, read out nor exported
            plot.legend.removeItem(self.total_curve)


def _raw_follows(raw: pg.PlotDataItem, smoothed: pg.PlotDataItem) -> None:
    """The raw curve is shown and hidden with its smoothed one (the one a legend entry hides)."""
    smoothed.visibleChanged.connect(lambda: raw.setVisible(smoothed.isVisible()))
