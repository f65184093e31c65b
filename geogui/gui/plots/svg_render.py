"""One graphics item (a plot, or a tab's whole layout) drawn as an SVG file that any renderer reads
the same way.

Qt's SVG generator writes every curve in its data coordinates under a group transform that scales
them to pixels (x by a few pixels a step, y by hundreds of pixels a unit), and marks the 1-px
cosmetic pen `vector-effect="non-scaling-stroke"`. Renderers that ignore that attribute (librsvg
before 2.52, ImageMagick's own) scale the pen with the data and draw each curve as a band tens of
pixels thick. So the curves' coordinates are mapped to the drawing's own units here and their groups'
transforms dropped: a 1-px line is then 1 unit wide whatever reads the file. Items of the scene that
are not the exported item's (the other plots of its tab) are left out of the drawing, not hidden
beyond its viewBox.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pyqtgraph as pg
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QGraphicsItem

SVG_NS = "http://www.w3.org/2000/svg"
_MATRIX = re.compile(r"matrix\(([^)]*)\)")
_PAIR = re.compile(r"(-?[\d.]+(?:e[-+]?\d+)?),(-?[\d.]+(?:e[-+]?\d+)?)")
_SHAPES = {f"{{{SVG_NS}}}{name}" for name in ("path", "polyline", "polygon", "rect")}

ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")


def render_svg(item: QGraphicsItem, target: Path) -> None:
    """Write `item` as it is drawn now to `target`: the drawing is the item's size in pixels, holds
    nothing of the scene outside the item, and has its curves in the drawing's own units."""
    source = item.sceneBoundingRect()
    width, height = source.width(), source.height()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    generator = QSvgGenerator()
    generator.setOutputDevice(buffer)
    generator.setSize(source.size().toSize())
    generator.setViewBox(QRectF(0, 0, width, height))
    views = item.scene().views()
    if views:  # at the default 72 dpi, text and axes would be drawn at 72/96 of the data's scale
        generator.setResolution(views[0].logicalDpiX())
    painter = QPainter(generator)
    try:
        painter.fillRect(QRectF(0, 0, width, height), pg.mkColor("w"))
        with _only(item), _export_mode(item):
            item.scene().render(painter, QRectF(0, 0, width, height), source)
    finally:
        painter.end()
    root = ET.fromstring(bytes(QByteArray(buffer.data())))
    _bake_transforms(root)
    root.set("width", _number(width))  # in pixels (CSS px, 96 to the inch), as the plot is on screen
    root.set("height", _number(height))
    Path(target).write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


@contextmanager
def _only(item: QGraphicsItem) -> Iterator[None]:
    """Draw nothing but `item` (with its children and the empty layouts it sits in) meanwhile.
    Opacity, not visibility: hiding a plot would ask its layout to close the gap."""
    ancestors: list[QGraphicsItem] = []
    parent = item.parentItem()
    while parent is not None:
        ancestors.append(parent)
        parent = parent.parentItem()
    lineage = {id(parent) for parent in ancestors}
    # The other items hang off the item's ancestors (or off nothing): setting theirs is enough.
    roots = [other for other in item.scene().items() if other is not item and id(other) not in lineage
             and (other.parentItem() is None or id(other.parentItem()) in lineage)]
    opacities = [(other, other.opacity()) for other in roots]
    for other, _ in opacities:
        other.setOpacity(0.0)
    try:
        yield
    finally:
        for other, opacity in opacities:
            other.setOpacity(opacity)


@contextmanager
def _export_mode(item: QGraphicsItem) -> Iterator[None]:
    """pyqtgraph's export mode meanwhile: scatter symbols are drawn as shapes, not stamped from the
    pixmap atlas that Qt's SVG generator would write whole, squeezed into each symbol's square."""
    items, index = [item], 0
    while index < len(items):
        items.extend(items[index].childItems())
        index += 1
    painted = [each for each in items if hasattr(each, "setExportMode")]
    for each in painted:
        each.setExportMode(True, {"antialias": True})
    try:
        yield
    finally:
        for each in painted:
            each.setExportMode(False)


def _bake_transforms(root: ET.Element) -> None:
    """Map the coordinates of every group of shapes into the drawing's units and drop its transform."""
    for group in root.iter(f"{{{SVG_NS}}}g"):
        match = _MATRIX.fullmatch(group.get("transform", ""))
        shapes = list(group)
        if match is None or not shapes or any(shape.tag not in _SHAPES for shape in shapes):
            continue
        a, b, c, d, e, f = (float(value) for value in match.group(1).split(","))
        if (b or c) and any(shape.tag.endswith("rect") for shape in shapes):
            continue  # a turned rectangle is no rectangle in the drawing's units: keep the transform
        if not _strokes_in_pixels(group, shapes, a, b, c, d):
            continue
        for shape in shapes:
            _map_shape(shape, lambda x, y: (a * x + c * y + e, b * x + d * y + f))
        del group.attrib["transform"]


def _strokes_in_pixels(group: ET.Element, shapes: list[ET.Element], a, b, c, d) -> bool:
    # A pen that scales with the transform (not cosmetic) would change its width once the transform
    # is gone; cosmetic pens and unstroked fills look the same either way.
    if group.get("stroke") == "none" or (a, b, c, d) == (1.0, 0.0, 0.0, 1.0):
        return True
    return all(shape.get("vector-effect") == "non-scaling-stroke" for shape in shapes)


def _map_shape(shape: ET.Element, to_drawing) -> None:
    def pair(match: re.Match) -> str:
        x, y = to_drawing(float(match.group(1)), float(match.group(2)))
        return f"{_number(x)},{_number(y)}"

    if shape.tag.endswith("rect"):
        x0, y0 = to_drawing(float(shape.get("x", 0)), float(shape.get("y", 0)))
        x1, y1 = to_drawing(float(shape.get("x", 0)) + float(shape.get("width", 0)),
                            float(shape.get("y", 0)) + float(shape.get("height", 0)))
        for name, value in (("x", min(x0, x1)), ("y", min(y0, y1)), ("width", abs(x1 - x0)),
                            ("height", abs(y1 - y0))):
            shape.set(name, _number(value))
    else:  # Qt writes absolute commands only (M, L, C, Z) and points as "x,y" pairs
        attribute = "d" if shape.tag.endswith("path") else "points"
        shape.set(attribute, _PAIR.sub(pair, shape.get(attribute, "")))


def _number(value: float) -> str:
    return f"{value:.6g}" if abs(value) < 1e5 else f"{value:.1f}"
