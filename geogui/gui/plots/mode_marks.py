"""One graphics item per plot that draws every mode segment's tint, every mode change's dashed line and
its label, every pause, and (runs compared) every run's mode strip.

An item per segment and per change (pyqtgraph's `LinearRegionItem` and `InfiniteLine`) costs about
600 KiB of Qt objects per switch across the board's plots and a scene item each to paint; a run with a
switch every minute for a night would hold hundreds of megabytes in markers. Here a switch costs a few
floats, and one `paint` draws whatever the view shows.

Labels are laid out in pixels, left to right, each just right of its line (inside its own mode's
tint), in up to `LABEL_ROWS` rows from the top; a label that fits in no row is left out rather than
drawn over another (the line stays, and the readout names the mode under the cursor). Pauses are a
dotted grey line with a pause glyph along the bottom, clear of the labels. Runs compared keep their
modes in strips along the bottom (see `geogui.gui.plotdata.plot_marks`), one row per run in the
legend's order, each named at its left end.
"""

from __future__ import annotations

from typing import Sequence

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter

from geogui.gui.palette import SEGMENT_ALPHA
from geogui.gui.plotdata.plot_marks import (ModeBand, ModeMark, PauseMark, RunStrip, change_label, marks_of,
                                            mode_label, pauses_of)
from geogui.gui.plots.strip_layout import (GLYPH_BOTTOM_PX, GLYPH_PX, PAUSE_COLOR, STRIP_ALPHA, draw_cap,
                                           draw_pause_glyph, line_pen, pause_glyph_box, strip_font, strip_rows,
                                           vertical)
from geogui.gui.plots.style import TEXT_COLOR

# Also importable from here, where they used to live.
__all__ = ["ModeBand", "ModeMark", "ModeMarksItem", "PauseMark", "RunStrip", "change_label", "marks_of",
           "mode_label", "pauses_of"]

LABEL_ROWS = 3
LABEL_GAP_PX = 4.0  # between a line and its label, and between two labels in a row
LABEL_TOP_PX = 4.0
LABEL_ROW_GAP_PX = 2.0
WIDE_PX = 2.0  # a pause narrower than this on screen is drawn as a line, wider as a grey stretch


class _SpansTheView(pg.GraphicsObject):
    """An item as large as its view, redrawn whenever the view moves: it draws what the view shows."""

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        view = self.getViewBox()
        return QRectF() if view is None else QRectF(view.viewRect())

    def viewRangeChanged(self) -> None:  # noqa: N802 - pyqtgraph's name
        self.prepareGeometryChange()
        self.update()


class ModeMarksItem(_SpansTheView):
    """Every band, mark, pause and strip of one plot, behind the curves; its labels and glyphs (`labels`,
    a second item) are drawn over them. `add_to` puts both on a plot with `ignoreBounds`: they never
    widen the view."""

    def __init__(self) -> None:
        super().__init__()
        self.bands: tuple[ModeBand, ...] = ()
        self.marks: tuple[ModeMark, ...] = ()
        self.pauses: tuple[PauseMark, ...] = ()  # the run shown alone's; compared runs' are in their strips
        self.strips: tuple[RunStrip, ...] = ()  # one per compared run, in the legend's order
        self.drawn_strips: list[tuple[RunStrip, QRectF]] = []  # in scene coordinates, from the last paint
        # The stretch of view y the mode tints cover; None: the whole view. A heatmap keeps them off its
        # cells, whose colours must read true against the colour bar.
        self.tint_rows: tuple[float, float] | None = None
        self.labels = _ModeLabels(self)
        self.setZValue(-100)

    def add_to(self, plot: pg.PlotItem) -> None:
        plot.addItem(self, ignoreBounds=True)
        plot.addItem(self.labels, ignoreBounds=True)

    def set_marks(self, bands: Sequence[ModeBand] = (), marks: Sequence[ModeMark] = (),
                  pauses: Sequence[PauseMark] = (), strips: Sequence[RunStrip] = ()) -> None:
        state = (tuple(bands), tuple(marks), tuple(pauses), tuple(strips))
        if state != self._state():
            self.bands, self.marks, self.pauses, self.strips = state
            self.update()
            self.labels.update()

    def _state(self) -> tuple[tuple, tuple, tuple, tuple]:
        return self.bands, self.marks, self.pauses, self.strips

    def clear(self) -> None:
        self.set_marks()

    def setVisible(self, visible: bool) -> None:  # noqa: N802 - Qt's name
        super().setVisible(visible)
        self.labels.setVisible(visible)

    def label_rects(self) -> list[tuple[ModeMark, QRectF]]:
        """Each drawn label and its box on the scene, as laid out by the last paint."""
        return list(self.labels.drawn)

    def visible_marks(self, shown: QRectF) -> list[ModeMark]:
        return [mark for mark in self.marks if shown.left() <= mark.x <= shown.right()]

    def paint(self, painter: QPainter, *_args) -> None:
        self.drawn_strips = []
        view = self.getViewBox()
        if view is None or not any(self._state()):
            return
        shown = view.viewRect()
        top, bottom = shown.top(), shown.bottom()
        if self.tint_rows is not None:
            top, bottom = max(top, min(self.tint_rows)), min(bottom, max(self.tint_rows))
        for band in self.bands:
            left, right = max(band.left, shown.left()), min(band.right, shown.right())
            if right > left and bottom > top:
                tint = QColor(band.color)
                tint.setAlpha(SEGMENT_ALPHA)
                painter.fillRect(QRectF(left, top, right - left, bottom - top), tint)
        px = _Pixels(painter, shown)
        painter.save()
        painter.resetTransform()  # lines are drawn in pixels, whatever the zoom
        _paint_pauses(painter, px, self.pauses, PAUSE_COLOR, (px.top, px.bottom))
        for mark in self.visible_marks(shown):
            painter.setPen(line_pen(mark.color, Qt.PenStyle.DashLine, 1.5))
            vertical(painter, px.x(mark.x), px.top, px.bottom)
        rows = strip_rows(px.top, px.bottom, len(self.strips), px.strip_label_height)
        for strip, row in zip(self.strips, rows.rows):
            self._paint_strip(painter, px, strip, row)
        painter.restore()

    def _paint_strip(self, painter: QPainter, px: "_Pixels", strip: RunStrip, row: tuple[float, float]) -> None:
        """One compared run: its modes along its row, its switches across the view in its colour."""
        for band in strip.bands:
            left, right = px.span(band.left, band.right)
            if right > left:
                fill = QColor(band.color)
                fill.setAlpha(STRIP_ALPHA)
                painter.fillRect(QRectF(left, row[0], right - left, row[1] - row[0]), fill)
        _paint_pauses(painter, px, strip.pauses, strip.color, row)
        painter.setPen(line_pen(strip.color, Qt.PenStyle.DashLine))
        for x in strip.switches:
            if px.shows(x):
                vertical(painter, px.x(x), px.top, px.bottom)
        self.drawn_strips.append((strip, px.to_scene(self, QRectF(px.left, row[0], px.right - px.left,
                                                                   row[1] - row[0]))))


class _Pixels:
    """The view's edges in pixels, and view x to pixels, for a painter whose transform maps the view."""

    def __init__(self, painter: QPainter, shown: QRectF) -> None:
        self.to_pixels = painter.transform()
        self.from_pixels = self.to_pixels.inverted()[0]
        self.shown = shown
        self.top, self.bottom = _pixel_rows(self.to_pixels, shown)
        self.left, self.right = self.x(shown.left()), self.x(shown.right())
        self.strip_label_height = QFontMetricsF(strip_font()).height()

    def x(self, x: float) -> float:
        return self.to_pixels.map(QPointF(x, 0)).x()

    def shows(self, x: float) -> bool:
        return self.shown.left() <= x <= self.shown.right()

    def span(self, left: float, right: float) -> tuple[float, float]:
        """A stretch of x clipped to the view, in pixels."""
        return self.x(max(left, self.shown.left())), self.x(min(right, self.shown.right()))

    def to_scene(self, item: pg.GraphicsObject, box: QRectF) -> QRectF:
        return item.mapRectToScene(self.from_pixels.mapRect(box))


def _paint_pauses(painter: QPainter, px: _Pixels, pauses: Sequence[PauseMark], color: str,
                  stretch_rows: tuple[float, float]) -> None:
    """A pause that lasted no x (the step and token axes) is a dotted line across the view; one that
    lasted a stretch of clock is that stretch in grey, over `stretch_rows`."""
    pen = line_pen(color, Qt.PenStyle.DotLine)
    for pause in pauses:
        if pause.right < px.shown.left() or pause.left > px.shown.right():
            continue
        left, right = px.span(pause.left, pause.right)
        if right - left >= WIDE_PX:
            grey = QColor(PAUSE_COLOR)
            grey.setAlpha(45)
            painter.fillRect(QRectF(left, stretch_rows[0], right - left, stretch_rows[1] - stretch_rows[0]), grey)
        else:
            painter.setPen(pen)
            vertical(painter, (left + right) / 2, px.top, px.bottom)


class _ModeLabels(_SpansTheView):
    """The labels of a `ModeMarksItem`, over the curves, on a pale ground so a curve never hides one;
    the pause glyphs, and the compared runs' names at their strips' left ends."""

    def __init__(self, owner: ModeMarksItem) -> None:
        super().__init__()
        self.owner = owner
        self.font = QFont()
        self.small_font = strip_font()
        # In scene coordinates, from the last paint:
        self.drawn: list[tuple[ModeMark, QRectF]] = []
        self.drawn_pauses: list[tuple[PauseMark, QRectF]] = []
        self.drawn_names: list[tuple[RunStrip, QRectF]] = []
        self.setZValue(50)

    def paint(self, painter: QPainter, *_args) -> None:
        self.drawn, self.drawn_pauses, self.drawn_names = [], [], []
        owner, view = self.owner, self.getViewBox()
        if view is None or not (owner.marks or owner.pauses or owner.strips):
            return
        px = _Pixels(painter, view.viewRect())
        painter.save()
        painter.resetTransform()
        boxes = self._paint_labels(painter, px)
        glyph_row = (px.bottom - GLYPH_BOTTOM_PX - GLYPH_PX, px.bottom - GLYPH_BOTTOM_PX)
        self._paint_glyphs(painter, px, owner.pauses, PAUSE_COLOR, glyph_row, boxes)
        rows = strip_rows(px.top, px.bottom, len(owner.strips), px.strip_label_height)
        for strip, row in zip(owner.strips, rows.rows):
            self._paint_name(painter, px, strip, row, rows.labelled)
            self._paint_glyphs(painter, px, strip.pauses, strip.color, row, boxes)
        painter.restore()

    def _paint_labels(self, painter: QPainter, px: _Pixels) -> list[QRectF]:
        """The mode changes' labels, in rows from the top; returns their boxes, in pixels."""
        painter.setFont(self.font)
        metrics = QFontMetricsF(self.font)
        row_ends = [-float("inf")] * LABEL_ROWS
        ground = QColor(255, 255, 255, 200)
        boxes = []
        for mark in self.owner.visible_marks(px.shown):
            width, height = metrics.horizontalAdvance(mark.label) + 4, metrics.height()
            x = px.x(mark.x) + LABEL_GAP_PX
            if x + width > px.right:  # a label past the right edge would be cut: put it left of its line
                x -= width + 2 * LABEL_GAP_PX
            row = next((r for r, end in enumerate(row_ends) if x >= end + LABEL_GAP_PX), None)
            if row is None:
                continue
            box = QRectF(x, px.top + LABEL_TOP_PX + row * (height + LABEL_ROW_GAP_PX), width, height)
            if box.bottom() > px.bottom:
                continue
            row_ends[row] = box.right()
            painter.fillRect(box, ground)
            painter.setPen(QColor(mark.color))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, mark.label)
            boxes.append(box)
            self.drawn.append((mark, px.to_scene(self, box)))
        return boxes

    def _paint_glyphs(self, painter: QPainter, px: _Pixels, pauses: Sequence[PauseMark], color: str,
                      row: tuple[float, float], taken: list[QRectF]) -> None:
        """A pause glyph per pause in view, on `row`; one that would cover a label or another glyph is
        left out (its line stays)."""
        for pause in pauses:
            centre = (pause.left + pause.right) / 2
            if not px.shows(centre):
                continue
            box = pause_glyph_box(px.x(centre), *row)
            if box.top() < px.top or any(box.intersects(other) for other in taken):
                continue
            draw_pause_glyph(painter, box, color)
            taken.append(box)
            self.drawn_pauses.append((pause, px.to_scene(self, box)))

    def _paint_name(self, painter: QPainter, px: _Pixels, strip: RunStrip, row: tuple[float, float],
                    labelled: bool) -> None:
        """The run's colour at the strip's left end and, when the strip has room, its name."""
        cap = draw_cap(painter, row, px.left + 1, strip.color)
        if not labelled:
            return
        painter.setFont(self.small_font)
        metrics = QFontMetricsF(self.small_font)
        room = max((px.right - cap.right()) / 3, 0.0)  # a long name is elided: the strip stays readable
        text = metrics.elidedText(strip.label, Qt.TextElideMode.ElideMiddle, room)
        box = QRectF(cap.right() + 3, row[0], metrics.horizontalAdvance(text) + 2, row[1] - row[0])
        painter.setPen(QColor(TEXT_COLOR))
        painter.drawText(box, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        self.drawn_names.append((strip, px.to_scene(self, box)))


def _pixel_rows(to_pixels, shown: QRectF) -> tuple[float, float]:
    """The top and bottom of the view, in pixels."""
    a, b = to_pixels.map(QPointF(0, shown.top())).y(), to_pixels.map(QPointF(0, shown.bottom())).y()
    return min(a, b), max(a, b)
