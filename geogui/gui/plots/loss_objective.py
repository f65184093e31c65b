"""What the plotted loss is in each mode (see geogui.engine.modes), said where the user looks.

Standard and geometric fast train one routed forward pass: cross-entropy plus the router's
load-balance loss (and, in geometric fast, the small rotation penalty), so their losses compare. The
geometric step is another objective: the cross-entropy of the mean prediction of every presentation
(each one's embeddings rotated, its tokens forced to its own expert), plus the rotation penalty, the
orthogonality and the specialization terms, and no load-balance loss. Its loss jumps on entry and
drops on leaving; a note beside each such change says why, and the loss plot's title tooltip says
what the loss is in every mode the run trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter

from geogui.gui.palette import mode_color
from geogui.gui.plotdata.shown_series import RunView
from geogui.gui.plots.mode_marks import mode_label
from geogui.settings import Mode

NOTE_GAP_PX = 6.0  # between a change's line and its note
NOTE_EDGE_PX = 4.0  # between a note and the view's top or bottom
MODE_LABEL_ROW_PX = 22.0  # a note at the top sits under the mode label's first row


def objective(mode: str, presentations: int) -> str:
    """What `loss` is in `mode`, as one line."""
    if mode == Mode.GEOMETRIC.value:
        return (f"cross-entropy of the mean prediction of {presentations} presentations + rotation penalty "
                "+ orthogonality + specialization")
    if mode == Mode.GEOMETRIC_FAST.value:
        return "cross-entropy + load balance + rotation penalty"
    return "cross-entropy + load balance"


def note_lines(mode: str, presentations: int) -> tuple[str, ...]:
    """The note at a change into `mode` whose objective differs from the last one's."""
    label = mode_label(mode)
    if mode == Mode.GEOMETRIC.value:
        return (f"{label} objective: cross-entropy of the mean of {presentations} presentations",
                "+ penalty + orthogonality + specialization")
    return (f"{label} objective: {objective(mode, presentations)}",)


def _forward_pass(mode: str) -> str:
    return "presentations" if mode == Mode.GEOMETRIC.value else "routed"


@dataclass(frozen=True)
class ObjectiveNote:
    """A change of objective at `x`."""

    x: float
    color: str
    lines: tuple[str, ...]


def objective_notes(run: RunView) -> list[ObjectiveNote]:
    """A note at every mode change where the loss becomes another objective (into or out of geometric)."""
    series = run.series
    changes = [c for c in series.mode_changes if _forward_pass(c.mode) != _forward_pass(c.previous_mode)]
    if not changes:
        return []
    positions = run.x_at_steps([change.step - 0.5 for change in changes])
    return [ObjectiveNote(float(x), mode_color(change.mode), note_lines(change.mode, series.presentations))
            for change, x in zip(changes, positions)]


def objectives_tooltip(run: RunView) -> str:
    """What the loss is in each mode the run trained, for the loss plot's title."""
    modes = run.series.modes_trained()
    if not modes:
        return "The loss of each batch: what it adds up depends on the mode"
    return "\n".join(f"{mode_label(mode)}: loss = {objective(mode, run.series.presentations)}" for mode in modes)


class ObjectiveNotesItem(pg.GraphicsObject):
    """The notes of one plot, drawn in pixels just right of their change's line (left of it near the
    view's right edge), on a pale ground, above or below what `curves` draw under the note (wherever
    there is more room). A note that would overlap one drawn before is left out."""

    def __init__(self, curves: Sequence[pg.PlotDataItem]) -> None:
        super().__init__()
        self.curves = tuple(curves)
        self.notes: tuple[ObjectiveNote, ...] = ()
        self.font = QFont()
        self.font.setPointSizeF(8.0)
        self.drawn: list[tuple[ObjectiveNote, QRectF]] = []  # in pixels, from the last paint
        self.setZValue(50)

    def set_notes(self, notes: Sequence[ObjectiveNote]) -> None:
        notes = tuple(notes)
        if notes != self.notes:
            self.notes = notes
            self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        view = self.getViewBox()
        return QRectF() if view is None else QRectF(view.viewRect())

    def viewRangeChanged(self) -> None:  # noqa: N802 - pyqtgraph's name
        self.prepareGeometryChange()
        self.update()

    def paint(self, painter: QPainter, *_args) -> None:
        self.drawn = []
        view = self.getViewBox()
        if view is None or not self.notes:
            return
        shown = view.viewRect()
        to_pixels = painter.transform()
        painter.save()
        painter.resetTransform()  # text in pixels, whatever the zoom
        painter.setFont(self.font)
        metrics = QFontMetricsF(self.font)
        top, bottom = sorted(to_pixels.map(QPointF(shown.left(), y)).y() for y in (shown.top(), shown.bottom()))
        right_edge = to_pixels.map(QPointF(shown.right(), 0)).x()
        for note in self.notes:
            if not shown.left() <= note.x <= shown.right():
                continue
            width = max(metrics.horizontalAdvance(line) for line in note.lines) + 6
            height = metrics.height() * len(note.lines) + 4
            x = to_pixels.map(QPointF(note.x, 0)).x() + NOTE_GAP_PX
            if x + width > right_edge:
                x -= width + 2 * NOTE_GAP_PX
            data = self._data_rows(to_pixels, x, x + width)
            upper, lower = top + MODE_LABEL_ROW_PX, bottom - NOTE_EDGE_PX - height
            preferred = _free_row(upper, lower + height, height, data)
            boxes = [QRectF(x, y, width, height) for y in (preferred, upper + lower - preferred)]
            box = next((b for b in boxes if not any(b.intersects(other) for _, other in self.drawn)), None)
            if box is None:
                continue
            painter.fillRect(box, QColor(255, 255, 255, 225))
            painter.setPen(QColor(note.color).darker(130))
            painter.drawText(box.adjusted(3, 2, -3, -2), Qt.AlignmentFlag.AlignLeft, "\n".join(note.lines))
            self.drawn.append((note, box))
        painter.restore()

    def _data_rows(self, to_pixels, left: float, right: float) -> tuple[float, float] | None:
        """The pixel rows (top, bottom) the curves take between pixel columns left and right."""
        from_pixels = to_pixels.inverted()[0]
        x0, x1 = from_pixels.map(QPointF(left, 0)).x(), from_pixels.map(QPointF(right, 0)).x()
        ys = []
        for curve in self.curves:
            x, y = curve.getData()  # as drawn: reduced, and log10 on a log axis
            if x is not None and len(x):
                inside = y[(x >= min(x0, x1)) & (x <= max(x0, x1))]
                ys.append(inside[np.isfinite(inside)])
        ys = np.concatenate(ys) if ys else np.zeros(0)
        if not len(ys):
            return None
        rows = [to_pixels.map(QPointF(0, float(value))).y() for value in (ys.min(), ys.max())]
        return min(rows), max(rows)


def _free_row(top: float, bottom: float, height: float, data: tuple[float, float] | None) -> float:
    """The top of a note `height` tall between pixel rows top and bottom, at the edge of the larger
    space above or below `data` (the rows the curves take under the note)."""
    if data is None:
        return bottom - height
    above, below = data[0] - top, bottom - data[1]
    return top if above >= below else bottom - height
