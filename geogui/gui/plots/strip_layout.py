"""Where the mode marks' pixel-sized parts go: the compared runs' strips along the bottom of a plot, and
the pause glyph. In pixels, whatever the zoom; `mode_marks` paints with these."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen

PAUSE_COLOR = "#757575"
STRIP_ALPHA = 150  # of 255: a strip is thin, so its colour is stronger than a tint's
STRIP_GAP_PX = 1.0
STRIP_BOTTOM_PX = 1.0
MIN_STRIP_PX = 3.0
STRIPS_SHARE = 0.3  # the strips together take at most this much of the view's height
CAP_PX = 8.0  # the run-coloured square at a strip's left end, matching its curve and legend entry
GLYPH_PX = 10.0
GLYPH_BOTTOM_PX = 3.0


def strip_font() -> QFont:
    font = QFont()
    font.setPointSizeF(max(font.pointSizeF() - 2, 6.0))
    return font


@dataclass(frozen=True)
class StripRows:
    """The pixel rows (top, bottom) of the strips, first run on top, and whether they have room for names."""

    rows: tuple[tuple[float, float], ...]
    labelled: bool

    def top(self, bottom: float) -> float:
        """The top of the stack (`bottom`: no strips)."""
        return self.rows[0][0] if self.rows else bottom


def strip_rows(top: float, bottom: float, count: int, label_px: float) -> StripRows:
    """`count` strips stacked up from the bottom of the view: a name's height each while they fit in
    `STRIPS_SHARE` of it, else thinner and unnamed (the cap still matches them to the legend)."""
    if not count:
        return StripRows((), False)
    height = min(label_px, (bottom - top) * STRIPS_SHARE / count - STRIP_GAP_PX)
    labelled = height >= label_px
    height = max(height, MIN_STRIP_PX)
    rows, y = [], bottom - STRIP_BOTTOM_PX
    for _ in range(count):
        rows.append((y - height, y))
        y -= height + STRIP_GAP_PX
    return StripRows(tuple(reversed(rows)), labelled)


def pause_glyph_box(x: float, row_top: float, row_bottom: float) -> QRectF:
    """The pause glyph's box, centred on `x` and on the row, at most `GLYPH_PX` tall."""
    height = min(GLYPH_PX, row_bottom - row_top)
    width = max(height * 0.8, 5.0)
    return QRectF(x - width / 2, (row_top + row_bottom - height) / 2, width, height)


def draw_pause_glyph(painter: QPainter, box: QRectF, color: str) -> None:
    """Two bars, as on a pause button, on a pale ground so that a curve never hides them."""
    painter.fillRect(box, QColor(255, 255, 255, 220))
    bar = max(box.width() / 4, 1.0)
    for left in (box.left() + bar * 0.5, box.right() - bar * 1.5):
        painter.fillRect(QRectF(left, box.top() + 1, bar, box.height() - 2), QColor(color))


def draw_cap(painter: QPainter, row: tuple[float, float], left: float, color: str) -> QRectF:
    cap = QRectF(left, row[0], CAP_PX, row[1] - row[0])
    painter.fillRect(cap, QColor(color))
    return cap


def line_pen(color: str, style: Qt.PenStyle, width: float = 1.0) -> QPen:
    pen = QPen(QColor(color), width, style)
    pen.setCosmetic(True)
    return pen


def vertical(painter: QPainter, x: float, top: float, bottom: float) -> None:
    painter.drawLine(QPointF(x, top), QPointF(x, bottom))
