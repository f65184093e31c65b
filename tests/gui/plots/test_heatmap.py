"""The heatmaps draw the data they were given: cells in the colour bar's colours at exactly their place,
grey where there is no value, rows and columns named as asked, a readout naming the cell under the
mouse, and (over steps) the run's mode marks and an image that follows the view."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF
from PySide6.QtGui import QColor, QImage, QPainter

from geogui.gui.plotdata.cell_readout import utilization_readout
from geogui.gui.plotdata.step_matrix import StepMatrix
from geogui.gui.plots.heatmap import SIGNED, UTILIZATION, MatrixHeatmap, StepHeatmap
from geogui.gui.plots.heatmap_image import NAN_COLOR
from geogui.gui.plots.mode_marks import ModeBand, ModeMark
from geogui.gui.plots.overlays import CompareSpec
from geogui.gui.plots.plot import Plot
from geogui.gui.plots.step_heatmap import LANE_PX

from tests.gui.plots.conftest import NAMES

LAYERS = ("layer 0", "layer 1", "layer 2", "layer 3")


@pytest.fixture
def canvas(qtbot):
    """A shown layout widget to put plots on."""
    widget = pg.GraphicsLayoutWidget()
    widget.resize(900, 500)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def rendered(widget) -> QImage:
    widget.ci.layout.activate()
    return widget.grab().toImage()


def pixel(widget, image: QImage, item: pg.PlotItem, x: float, y: float) -> tuple[int, int, int]:
    """The rendered colour at view point (x, y) of `item`'s view."""
    point = widget.mapFromScene(item.getViewBox().mapViewToScene(QPointF(x, y)))
    color = image.pixelColor(point)
    return color.red(), color.green(), color.blue()


def rgb(color) -> tuple[int, int, int]:
    color = QColor(color) if isinstance(color, str) else color
    return color.red(), color.green(), color.blue()


def where_on_bar(widget, image: QImage, heat, color: tuple[int, int, int]) -> float:
    """Where along the drawn colour bar (0: its low end, 1: its high end) `color` is drawn most nearly."""
    box = heat.bar.bar.sceneBoundingRect()
    vertical = box.height() > box.width()
    samples = np.linspace(0.01, 0.99, 200)
    points = [QPointF(box.center().x(), box.bottom() - f * box.height()) if vertical
              else QPointF(box.left() + f * box.width(), box.center().y()) for f in samples]
    drawn = np.array([rgb(image.pixelColor(widget.mapFromScene(p))) for p in points])
    return float(samples[np.argmin(np.abs(drawn - np.array(color)).sum(axis=1))])


def close(a, b, tolerance=12) -> bool:
    return all(abs(p - q) <= tolerance for p, q in zip(a, b))


def drawn_labels(axis: pg.AxisItem) -> dict[str, QPointF]:
    """Each label the axis draws and the centre of its box, in scene coordinates."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _axis, _ticks, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return {text: axis.mapToScene(rect.center()) for rect, _flags, text in texts}


# -- the matrix heatmap -----------------------------------------------------------------------------
@pytest.fixture
def matrix(canvas):
    heatmap = MatrixHeatmap("Utilization", formatter=utilization_readout, row_title="layer", col_title="expert")
    canvas.addItem(heatmap)
    values = np.ones((4, 8), np.float32)
    values[0, 0], values[1, 2], values[2, 3], values[3, 5] = 2.0, 0.4, 0.0, np.nan
    values[3, 6] = 7.0  # past the top level: drawn in the top colour too
    heatmap.set_matrix(values, LAYERS, NAMES)
    return heatmap


def test_matrix_cells_take_the_colour_bars_colours_and_nan_is_grey(canvas, matrix):
    image = rendered(canvas)
    heat = matrix.heat
    assert heat.levels == UTILIZATION.levels  # fixed levels: 1 = fair share is the middle of the bar

    def cell(row, col):
        return pixel(canvas, image, matrix, col + 0.5, row + 0.5)

    assert cell(0, 0) == rgb(QColor(*heat.table[-1][:3]))  # the maximum: the bar's top colour
    assert where_on_bar(canvas, image, heat, cell(0, 0)) > 0.97  # as the bar draws it
    assert cell(3, 6) == cell(0, 0)
    assert cell(2, 3) == rgb(QColor(*heat.table[0][:3]))  # the minimum: the bar's bottom colour
    assert where_on_bar(canvas, image, heat, cell(2, 3)) < 0.03
    assert 0.45 < where_on_bar(canvas, image, heat, cell(1, 1)) < 0.55  # fair share: the bar's middle
    assert cell(3, 5) == rgb(NAN_COLOR)  # no value: grey, which the scale never uses
    assert all(not close(rgb(QColor(*entry[:3])), rgb(NAN_COLOR), 20) for entry in heat.table)
    assert cell(1, 2) == rgb(heat.color_of(0.4))
    assert cell(1, 1) == rgb(heat.color_of(1.0)) != cell(1, 2)
    assert close(cell(1, 1), (238, 238, 238), 20)  # fair share reads as the pale middle


def test_every_cell_is_exactly_in_its_place(canvas, matrix):
    image = rendered(canvas)
    item = matrix.heat.image
    assert item.mapToView(QPointF(0, 0)) == QPointF(0, 0)
    assert item.mapToView(QPointF(8, 4)) == QPointF(8, 4)  # pixel (i, j) covers [j, j + 1] x [i, i + 1]
    # Just inside either edge of a cell, its colour; just past them, its neighbours'.
    assert pixel(canvas, image, matrix, 0.1, 0.1) == pixel(canvas, image, matrix, 0.9, 0.9) \
        != pixel(canvas, image, matrix, 1.1, 0.5)
    assert pixel(canvas, image, matrix, 3.5, 2.1) != pixel(canvas, image, matrix, 3.5, 1.9)


def test_signed_data_gets_symmetric_automatic_levels(canvas):
    heatmap = MatrixHeatmap("Angles", scale=SIGNED)
    canvas.addItem(heatmap)
    values = np.array([[0.3, -0.1], [0.0, 0.05]], np.float32)
    heatmap.set_matrix(values, ["P0", "P1"], ["d0", "d1"])
    assert heatmap.heat.levels == pytest.approx((-0.3, 0.3))
    image = rendered(canvas)
    assert pixel(canvas, image, heatmap, 0.5, 0.5) == rgb(QColor(*heatmap.heat.table[-1][:3]))
    assert pixel(canvas, image, heatmap, 0.5, 1.5) == rgb(heatmap.heat.color_of(0.0))
    heatmap.set_matrix(values * 10, ["P0", "P1"], ["d0", "d1"])  # new data, new levels
    assert heatmap.heat.levels == pytest.approx((-3.0, 3.0))


def test_rows_and_columns_are_named_at_their_cells(canvas, matrix):
    rendered(canvas)
    view = matrix.getViewBox()
    rows = drawn_labels(matrix.getAxis("left"))
    assert set(rows) == set(LAYERS)
    for index, name in enumerate(LAYERS):
        centre = view.mapViewToScene(QPointF(0, index + 0.5))
        assert abs(rows[name].y() - centre.y()) < 2
    columns = drawn_labels(matrix.getAxis("bottom"))
    assert set(columns) == set(NAMES)
    for index, name in enumerate(NAMES):
        assert abs(columns[name].x() - view.mapViewToScene(QPointF(index + 0.5, 0)).x()) < 2
    assert "Utilization" in matrix.titleLabel.text


def test_the_readout_names_the_cell_under_a_scene_position(canvas, matrix):
    rendered(canvas)
    view = matrix.getViewBox()
    at = view.mapViewToScene
    assert matrix.readout_at_scene(at(QPointF(3.5, 2.5))) == "layer 2 · E3: 0.00 (dead)"
    assert matrix.readout_at_scene(at(QPointF(2.2, 1.7))) == "layer 1 · E2: 0.40"
    assert matrix.readout_at_scene(at(QPointF(5.5, 3.5))) == "layer 3 · G1: dormant (not routable)"
    assert matrix.readout_at_scene(at(QPointF(6.5, 0.5))) == "layer 0 · G2: 1.00 (fair share)"
    assert matrix.readout_at_scene(at(QPointF(9, 0.5))) == ""  # off the cells
    plain = MatrixHeatmap("Similarity")
    canvas.addItem(plain, row=1, col=0)
    plain.set_matrix(np.eye(2), ["P0", "P1"], ["P0", "P1"])
    assert plain.readout_at(1.5, 0.5) == "P0 · P1: 0.00"  # the default formatter: names and value


def test_moving_the_mouse_over_a_cell_reads_it_out(canvas, matrix, qtbot):
    rendered(canvas)
    view = matrix.getViewBox()
    target = canvas.mapFromScene(view.mapViewToScene(QPointF(3.5, 2.5)))
    heard = []
    matrix.hovered.connect(heard.append)

    def moved_onto_the_cell() -> bool:
        # pyqtgraph drops mouse moves that come too soon after the last one: move until one gets through.
        qtbot.mouseMove(canvas.viewport(), target)
        return matrix.readout != ""

    qtbot.waitUntil(moved_onto_the_cell, timeout=3000)
    assert heard[-1] == matrix.readout == "layer 2 · E3: 0.00 (dead)"
    assert matrix.heat.image.toolTip() == "layer 2 · E3: 0.00 (dead)"


def test_a_matrix_must_match_its_names(matrix):
    with pytest.raises(ValueError):
        matrix.set_matrix(np.zeros((4, 7)), LAYERS, NAMES)


# -- the heatmap over steps -------------------------------------------------------------------------
def pattern_store(steps: int = 1000) -> tuple[StepMatrix, np.ndarray]:
    """Two layers of eight experts; layer 1's E3 is 2 every 10th step and 0 otherwise; step 300..309
    has no routing at all."""
    rows = np.full((steps, 16), 1.0, np.float32)
    index = np.arange(1, steps + 1)
    rows[:, 8 + 3] = np.where(index % 10 == 0, 2.0, 0.0)
    rows[299:309] = np.nan
    store = StepMatrix(16)
    store.append(index, rows)
    return store, rows


@pytest.fixture
def stepped(canvas, qtbot):
    heatmap = StepHeatmap("Layer 1 utilization")
    canvas.addItem(heatmap)
    store, _rows = pattern_store()
    heatmap.set_source(store, slice(8, 16), NAMES)
    heatmap.redraw()
    rendered(canvas)
    return heatmap


def settle(qtbot, heatmap) -> None:
    qtbot.waitUntil(lambda: heatmap.drawn_key == heatmap.view_key(), timeout=2000)


def test_step_cells_are_exactly_on_their_steps(canvas, stepped, qtbot):
    stepped.getViewBox().setXRange(100.5, 140.5, padding=0)  # 40 steps, ~20 px each
    settle(qtbot, stepped)
    drawn = stepped.drawn
    assert drawn.cell_steps == 1 and (drawn.x0, drawn.x1) == (100.5, 140.5)
    item = stepped.heat.image
    assert item.mapToView(QPointF(0, 0)) == QPointF(100.5, 0)
    assert item.mapToView(QPointF(drawn.cells, 8)) == QPointF(140.5, 8)
    image = rendered(canvas)
    top, bottom = stepped.heat.table[-1][:3], stepped.heat.table[0][:3]
    e3 = 3.5
    # Step 110 covers [109.5, 110.5]: the top colour just inside both edges, the bottom just outside.
    for x, expected in ((109.4, bottom), (109.6, top), (110.4, top), (110.6, bottom)):
        assert pixel(canvas, image, stepped, x, e3) == tuple(expected), x
    assert pixel(canvas, image, stepped, 110, 2.5) == rgb(stepped.heat.color_of(1.0))  # E2 is at fair share


def test_steps_without_routing_are_grey(canvas, stepped, qtbot):
    stepped.getViewBox().setXRange(280.5, 330.5, padding=0)
    settle(qtbot, stepped)
    image = rendered(canvas)
    assert pixel(canvas, image, stepped, 305, 0.5) == rgb(NAN_COLOR)
    assert pixel(canvas, image, stepped, 315, 0.5) == rgb(stepped.heat.color_of(1.0))


def test_the_image_follows_the_view_range_and_width(canvas, stepped, qtbot):
    view = stepped.getViewBox()
    width_px = view.width()
    whole = stepped.drawn
    assert whole.x0 == 0.5 and whole.x1 >= 1000.5 and whole.cells <= width_px
    for lo, hi in ((200.0, 260.0), (10.0, 900.0), (640.3, 641.9)):
        view.setXRange(lo, hi, padding=0)
        settle(qtbot, stepped)
        drawn = stepped.drawn
        assert drawn.x0 <= lo and drawn.x1 >= hi
        assert drawn.x0 > lo - drawn.cell_steps and drawn.x1 < hi + drawn.cell_steps  # no more than it shows
        assert 1 <= drawn.cells <= width_px
        assert drawn.cell_steps >= (hi - lo) / width_px  # never finer than a pixel
        rect = stepped.heat.image.mapRectToView(stepped.heat.image.boundingRect())
        assert (rect.left(), rect.right()) == pytest.approx((drawn.x0, drawn.x1))
    view.setXRange(10.0, 1000.0, padding=0)
    settle(qtbot, stepped)
    before = stepped.drawn
    canvas.resize(500, 500)  # a narrower view: wider cells, fewer of them
    qtbot.waitUntil(lambda: view.width() < width_px, timeout=2000)
    settle(qtbot, stepped)
    narrow = stepped.drawn
    assert narrow.cells <= view.width() and narrow.cells < before.cells and narrow.cell_steps > before.cell_steps
    stepped.refit()
    settle(qtbot, stepped)
    assert stepped.view_key()[0] == "auto" and stepped.drawn.x0 == 0.5


def test_a_linked_heatmap_follows_the_curve_plot_above_it(canvas, qtbot):
    curves = Plot("Loss", "loss", CompareSpec("Loss", lambda series: series.loss.view()))
    canvas.addItem(curves, row=0, col=0)
    heatmap = StepHeatmap("Layer 0 utilization")
    canvas.addItem(heatmap, row=1, col=0)
    heatmap.link_x_to(curves)
    store, _rows = pattern_store()
    heatmap.set_source(store, slice(0, 8), NAMES)
    heatmap.redraw()
    curves.getViewBox().setXRange(400.0, 500.0, padding=0)
    settle(qtbot, heatmap)
    assert heatmap.view_key()[1] == (400.0, 500.0)
    assert heatmap.drawn.x0 <= 400 and heatmap.drawn.x1 >= 500 and heatmap.drawn.x1 < 502


def test_the_rows_are_named_and_all_in_view_under_a_lane_for_the_mode_tints(canvas, stepped):
    rendered(canvas)
    names = drawn_labels(stepped.getAxis("left"))
    assert set(names) == set(NAMES)
    view = stepped.getViewBox()
    assert abs(names["E0"].y() - view.mapViewToScene(QPointF(0, 0.5)).y()) < 2  # E0 at the top
    top, bottom = view.viewRange()[1]
    assert bottom == 8
    lane_px = view.mapViewToScene(QPointF(0, 0)).y() - view.sceneBoundingRect().top()
    assert lane_px == pytest.approx(LANE_PX, abs=1)
    assert stepped.mode_marks.tint_rows == (top, 0.0)


def test_mode_marks_show_over_the_cells_and_tints_stay_off_them(canvas, stepped, qtbot):
    stepped.getViewBox().setXRange(0.5, 1000.5, padding=0)
    settle(qtbot, stepped)
    green, orange = "#3fae6a", "#e0673b"
    stepped.mode_marks.set_marks([ModeBand(0.5, 500.5, green), ModeBand(500.5, 1000.5, orange)],
                                 [ModeMark(500.5, orange, "geometric")])
    image = rendered(canvas)
    labels = stepped.mode_marks.label_rects()
    assert [mark.label for mark, _rect in labels] == ["geometric"]
    assert stepped.getViewBox().sceneBoundingRect().contains(labels[0][1])
    view = stepped.getViewBox()
    for row in (0.5, 2.5, 6.5):  # the change's dashed line over the cells: a dash within a few pixels
        centre = canvas.mapFromScene(view.mapViewToScene(QPointF(500.5, row)))
        run = [rgb(image.pixelColor(centre + QPoint(0, dy))) for dy in range(-6, 7)]
        assert any(close(color, rgb(orange), 40) for color in run), row
    # Cells keep the scale's colours exactly; only the lane above them is tinted.
    assert pixel(canvas, image, stepped, 250, 0.5) == rgb(stepped.heat.color_of(1.0))
    assert pixel(canvas, image, stepped, 750, 0.5) == rgb(stepped.heat.color_of(1.0))
    lane = stepped.getViewBox().viewRange()[1][0] / 2
    assert pixel(canvas, image, stepped, 250, lane) != (255, 255, 255)
    assert pixel(canvas, image, stepped, 250, lane) != pixel(canvas, image, stepped, 750, lane)


def test_the_step_readout_names_the_expert_and_the_steps(canvas, stepped, qtbot):
    view = stepped.getViewBox()
    view.setXRange(100.5, 140.5, padding=0)
    settle(qtbot, stepped)
    assert stepped.readout_at(120.2, 3.5) == "E3 at step 120: 2.00"
    assert stepped.readout_at(121.0, 3.4) == "E3 at step 121: 0.00"
    assert stepped.readout_at(121.0, 4.5) == "G0 at step 121: 1.00"
    assert stepped.readout_at(305.0, 3.5) == ""  # not drawn: off the image
    assert stepped.readout_at(121.0, -0.1) == ""  # the lane: no cell
    view.setXRange(0.5, 1000.5, padding=0)
    settle(qtbot, stepped)
    cell = stepped.cell_at(55.0, 3.5)
    assert cell.last > cell.first  # a cell of several steps reads as their range and their mean
    tens = sum(1 for step in range(cell.first, cell.last + 1) if step % 10 == 0)
    assert cell.value == pytest.approx(2.0 * tens / (cell.last - cell.first + 1))
    assert stepped.readout_at(55.0, 3.5) == f"E3 at steps {cell.first:,}–{cell.last:,}: {cell.value:.2f}"


def test_a_step_heatmap_needs_a_name_per_row(stepped):
    store, _rows = pattern_store(10)
    with pytest.raises(ValueError):
        stepped.set_source(store, slice(0, 8), NAMES[:7])


def test_no_menu_entries_that_mean_nothing_for_a_heatmap(stepped):
    assert not stepped.log_y_action.isVisible() and not stepped.fit_action.isVisible()
    assert stepped.getViewBox().state["mouseEnabled"] == [True, False]  # zoom and pan in x only
