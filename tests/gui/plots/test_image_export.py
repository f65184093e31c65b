"""A plot written as SVG holds that plot only, at its size, with thin lines in any renderer; the
right-click menu offers the plot's own exports and not pyqtgraph's."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest


from tests.gui.conftest import synthetic_record

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def board(board):
    board.append([synthetic_record(step) for step in range(1, 200)])
    board.redraw()
    return board


def _texts(root: ET.Element) -> str:
    return " ".join("".join(text.itertext()) for text in root.iter(f"{SVG}text"))


def test_svg_of_one_plot_is_that_plot_at_its_size(board, tmp_path):
    loss = board.training.loss_plot
    [out] = board.export_image(tmp_path / "loss.svg", loss)
    root = ET.parse(out).getroot()
    size = loss.sceneBoundingRect()
    view_box = [float(value) for value in root.get("viewBox").split()]
    assert view_box == pytest.approx([0, 0, size.width(), size.height()], abs=0.01)
    assert float(root.get("width")) == pytest.approx(size.width(), abs=0.01)
    assert float(root.get("height")) == pytest.approx(size.height(), abs=0.01)
    texts = _texts(root)
    assert "Loss" in texts
    for other in board.training.shown_plots:  # the tab's other plots are not in the file, not even hidden
        if other is not loss:
            assert other.titleLabel.text.split()[0] not in texts


def test_svg_curves_are_thin_in_the_drawings_own_units(board, tmp_path):
    [out] = board.export_image(tmp_path / "loss.svg", board.training.loss_plot)
    root = ET.parse(out).getroot()
    parents = {child: parent for parent in root.iter() for child in parent}
    curves = [shape for shape in root.iter(f"{SVG}path") if len(shape.get("d", "")) > 2000]  # 199 points
    assert curves
    for curve in curves:
        group = parents[curve]
        # No scaling transform: a stroke is as wide in the file as it is said to be, in any renderer.
        assert "transform" not in group.attrib
        assert float(group.get("stroke-width", 1)) <= 1.5
        xs = [float(x) for x in re.findall(r"[ML](-?[\d.]+),", curve.get("d"))]
        assert 0 <= min(xs) and max(xs) <= board.training.loss_plot.width()  # pixels, not steps


@pytest.mark.skipif(shutil.which("rsvg-convert") is None, reason="needs rsvg-convert (librsvg)")
def test_librsvg_draws_the_loss_curve_thin(board, tmp_path):
    from PySide6.QtGui import QColor, QImage

    [out] = board.export_image(tmp_path / "loss.svg", board.training.loss_plot)
    png = tmp_path / "loss.png"
    subprocess.run(["rsvg-convert", str(out), "-o", str(png)], check=True, timeout=60)
    image = QImage(str(png))
    # Down a pixel column in the flat end of the loss curve: the smoothed curve's blue spans a few
    # pixels, not a band tens of pixels high.
    column = round(image.width() * 0.8)
    blue = [y for y in range(image.height()) if _is_curve_blue(QColor(image.pixel(column, y)))]
    assert 0 < len(blue) <= 6


def _is_curve_blue(color) -> bool:
    return color.blue() > 150 and color.red() < 80 and color.green() < 160


def test_right_click_menu_has_one_image_export_and_not_pyqtgraphs(board):
    for plot in board.all_plots:
        view = plot.getViewBox()
        menu = view.getMenu(None)
        # What pyqtgraph shows on a right click: the view's menu and what its parents and scene add.
        plot.scene().addParentContextMenus(view, menu, SimpleNamespace(acceptedItem=view))
        texts = [action.text() for action in menu.actions()]
        assert "Export..." not in texts
        assert [text for text in texts if "export" in text.lower()] == ["Export data…", "Export image…"]


def test_svg_draws_scatter_symbols_as_shapes_not_a_squeezed_pixmap(board, tmp_path):
    from geogui.engine.metrics import EvalRecord

    board.append([EvalRecord(step=step, loss=2.0, perplexity=7.4) for step in (50, 100, 150)])
    board.redraw()
    [out] = board.export_image(tmp_path / "loss.svg", board.training.loss_plot)
    assert not list(ET.parse(out).getroot().iter(f"{SVG}image"))
