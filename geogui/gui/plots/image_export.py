"""Plots written as PNG or SVG, and the save dialog the plots' export entries share."""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtWidgets import QFileDialog, QWidget

IMAGE_SUFFIXES = (".png", ".svg")


class ExportTargetError(ValueError):
    """A plot image could not be written; the message names the file and the reason."""


def image_suffix(out: Path) -> str:
    """The suffix of `out` when it names an image format; ExportTargetError otherwise."""
    suffix = out.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ExportTargetError(f"{out}: plots are written as .png or .svg, not {suffix or 'no suffix'!r}")
    return suffix


def write_image(item, target: Path, suffix: str) -> None:
    """Write a plot (or a tab's whole layout) to `target`; ExportTargetError with the reason if it fails."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "ab"):  # fails with the reason when the target is not writable
            pass
    except OSError as exc:
        raise ExportTargetError(f"{target}: cannot write ({exc.strerror or exc})") from None
    exporter = (pg.exporters.ImageExporter(item) if suffix == ".png" else pg.exporters.SVGExporter(item))
    try:
        exporter.export(str(target))
    except OSError as exc:
        raise ExportTargetError(f"{target}: cannot write ({exc.strerror or exc})") from None
    except ValueError:
        if suffix != ".svg":
            raise
        # pyqtgraph's SVG clean-up cannot parse the closed paths ("... Z") that recent Qt writes
        # (pyqtgraph issue #3495); Qt's own SVG generator draws the same scene region instead.
        _render_svg(item, target)
    if not target.is_file() or target.stat().st_size == 0:
        raise ExportTargetError(f"{target}: the image could not be written")


def _render_svg(item, target: Path) -> None:
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QPainter
    from PySide6.QtSvg import QSvgGenerator

    source = item.sceneBoundingRect()
    generator = QSvgGenerator()
    generator.setFileName(str(target))
    generator.setSize(source.size().toSize())
    generator.setViewBox(QRectF(0, 0, source.width(), source.height()))
    views = item.scene().views()
    if views:  # at the default 72 dpi, text and axes would be drawn at 72/96 of the data's scale
        generator.setResolution(views[0].logicalDpiX())
    painter = QPainter(generator)
    try:
        painter.fillRect(QRectF(0, 0, source.width(), source.height()), pg.mkColor("w"))
        item.scene().render(painter, QRectF(0, 0, source.width(), source.height()), source)
    finally:
        painter.end()


def ask_save_path(parent: QWidget, title: str, name: str, filters: dict[str, str]) -> Path | None:
    """A file chosen in a save dialog, given the chosen filter's suffix when it has none of them."""
    first_suffix = next(iter(filters.values()))
    out, chosen = QFileDialog.getSaveFileName(parent, title, str(Path.home() / f"{slug(name)}{first_suffix}"),
                                              ";;".join(filters))
    if not out:
        return None
    out = Path(out)
    if out.suffix.lower() not in filters.values():
        out = out.with_name(out.name + filters.get(chosen, first_suffix))
    return out


def slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())
