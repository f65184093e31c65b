"""One graphics item per plot that draws every mode segment's tint, every mode change's dashed line and
its label.

An item per segment and per change (pyqtgraph's `LinearRegionItem` and `InfiniteLine`) costs about
600 KiB of Qt objects per switch across the board's plots and a scene item each to paint; a run with a
switch every minute for a night would hold hundreds of megabytes in markers. Here a switch costs a few
floats, and one `paint` draws whatever the view shows.

Labels are laid out in pixels, left to right, each just right of its line (inside its own mode's
tint), in up to `LABEL_ROWS` rows from the top; a label that fits in no row is left out rather than
drawn over another (the line stays, and the readout names the mode under the cursor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen

from geogui.engine.metrics import ModeChange
from geogui.gui.palette import SEGMENT_ALPHA, mode_color
from geogui.gui.plotdata.shown_series import RunView
from geogui.settings import Mode

LABEL_ROWS = 3
LABEL_GAP_PX = 4.0  # between a line and its label, and between two labels in a row
LABEL_TOP_PX = 4.0
LABEL_ROW_GAP_PX = 2.0


@dataclass(frozen=True)
class ModeBand:
    """A stretch of x trained in one mode, tinted in that mode's colour."""

    left: float
    right: float
    color: str


@dataclass(frozen=True)
class ModeMark:
    """A mode change drawn as a dashed line at `x`, labelled."""

    x: float
    color: str
    label: str


def mode_label(mode: str) -> str:
    try:
        return Mode(mode).label
    except ValueError:
        return mode


def change_label(change: ModeChange) -> str:
    label = mode_label(change.mode)
    if change.penalty_weight != change.previous_penalty_weight:
        label += f"  w={change.penalty_weight:g}"
    return label


def marks_of(run: RunView) -> tuple[list[ModeBand], list[ModeMark]]:
    """The run's mode segments and changes at today's x positions: the last segment grows with the run,
    and a wall-time or token axis moves them all. Each edge lies halfway between two batches."""
    series = run.series
    segments, changes = series.segments, series.mode_changes
    bands, marks = [], []
    if segments:
        last_step = float(series.step.view()[-1]) if len(series) else segments[-1].start_step
        edges = run.x_at_steps([s.start_step - 0.5 for s in segments] + [last_step + 0.5])
        bands = [ModeBand(float(left), float(max(left, right)), mode_color(segment.mode))
                 for segment, left, right in zip(segments, edges, edges[1:])]
    if changes:
        positions = run.x_at_steps([change.step - 0.5 for change in changes])
        marks = [ModeMark(float(x), mode_color(change.mode), change_label(change))
                 for change, x in zip(changes, positions)]
    return bands, marks


class _SpansTheView(pg.GraphicsObject):
    """An item as large as its view, redrawn whenever the view moves: it draws what the view shows."""

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        view = self.getViewBox()
        return QRectF() if view is None else QRectF(view.viewRect())

    def viewRangeChanged(self) -> None:  # noqa: N802 - pyqtgraph's name
        self.prepareGeometryChange()
        self.update()


class ModeMarksItem(_SpansTheView):
    """Every band and mark of one plot, behind the curves; its labels (`labels`, a second item) are
    drawn over them. `add_to` puts both on a plot with `ignoreBounds`: they never widen the view."""

    def __init__(self) -> None:
        super().__init__()
        self.bands: tuple[ModeBand, ...] = ()
        self.marks: tuple[ModeMark, ...] = ()
        self.labels = _ModeLabels(self)
        self.setZValue(-100)

    def add_to(self, plot: pg.PlotItem) -> None:
        plot.addItem(self, ignoreBounds=True)
        plot.addItem(self.labels, ignoreBounds=True)

    def set_marks(self, bands: Sequence[ModeBand], marks: Sequence[ModeMark]) -> None:
        bands, marks = tuple(bands), tuple(marks)
        if (bands, marks) != (self.bands, self.marks):
            self.bands, self.marks = bands, marks
            self.update()
            self.labels.update()

    def clear(self) -> None:
        self.set_marks((), ())

    def setVisible(self, visible: bool) -> None:  # noqa: N802 - Qt's name
        super().setVisible(visible)
        self.labels.setVisible(visible)

    def label_rects(self) -> list[tuple[ModeMark, QRectF]]:
        """Each drawn label and its box on the scene, as laid out by the last paint."""
        return list(self.labels.drawn)

    def visible_marks(self, shown: QRectF) -> list[ModeMark]:
        return [mark for mark in self.marks if shown.left() <= mark.x <= shown.right()]


    def paint(self, painter: QPainter, *_args) -> None:
        view = self.getViewBox()
        if view is None or not (self.bands or self.marks):
            return
        shown = view.viewRect()
        for band in self.bands:
            left, right = max(band.left, shown.left()), min(band.right, shown.right())
            if right > left:
                tint = QColor(band.color)
                tint.setAlpha(SEGMENT_ALPHA)
                painter.fillRect(QRectF(left, shown.top(), right - left, shown.height()), tint)
        to_pixels = painter.transform()
        painter.save()
        painter.resetTransform()  # lines are drawn in pixels, whatever the zoom
        top, bottom = _pixel_rows(to_pixels, shown)
        for mark in self.visible_marks(shown):
            x = to_pixels.map(QPointF(mark.x, 0)).x()
            pen = QPen(QColor(mark.color), 1.5, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawLine(QPointF(x, top), QPointF(x, bottom))
        painter.restore()


class _ModeLabels(_SpansTheView):
    """The labels of a `ModeMarksItem`, over the curves, on a pale ground so a curve never hides one."""

    def __init__(self, owner: ModeMarksItem) -> None:
        super().__init__()
        self.owner = owner
        self.font = QFont()
        self.drawn: list[tuple[ModeMark, QRectF]] = []  # in scene coordinates, from the last paint
        self.setZValue(50)


    def paint(self, painter: QPainter, *_args) -> None:
        self.drawn = []
        view = self.getViewBox()
        if view is None or not self.owner.marks:
            return
        shown = view.viewRect()
        to_pixels = painter.transform()
        from_pixels = to_pixels.inverted()[0]
        painter.save()
        painter.resetTransform()
        painter.setFont(self.font)
        metrics = QFontMetricsF(self.font)
        top, bottom = _pixel_rows(to_pixels, shown)
        right_edge = to_pixels.map(QPointF(shown.right(), 0)).x()
        row_ends = [-float("inf")] * LABEL_ROWS
        ground = QColor(255, 255, 255, 200)
        for mark in self.owner.visible_marks(shown):
            width, height = metrics.horizontalAdvance(mark.label) + 4, metrics.height()
            x = to_pixels.map(QPointF(mark.x, 0)).x() + LABEL_GAP_PX
            if x + width > right_edge:  # a label past the right edge would be cut: put it left of its line
                x -= width + 2 * LABEL_GAP_PX
            row = next((r for r, end in enumerate(row_ends) if x >= end + LABEL_GAP_PX), None)
            if row is None:
                continue
            box = QRectF(x, top + LABEL_TOP_PX + row * (height + LABEL_ROW_GAP_PX), width, height)
            if box.bottom() > bottom:
                continue
            row_ends[row] = box.right()
            painter.fillRect(box, ground)
            painter.setPen(QColor(mark.color))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, mark.label)
            self.drawn.append((mark, self.mapRectToScene(from_pixels.mapRect(box))))
        painter.restore()


def _pixel_rows(to_pixels, shown: QRectF) -> tuple[float, float]:
    """The top and bottom of the view, in pixels."""
    a, b = to_pixels.map(QPointF(0, shown.top())).y(), to_pixels.map(QPointF(0, shown.bottom())).y()
    return min(a, b), max(a, b)
