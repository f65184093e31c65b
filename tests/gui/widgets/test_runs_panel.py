"""The Runs panel shows a run's whole identity (its mode and suffix) at the dock's default width, and
its rename field holds a whole run name."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QApplication, QLineEdit, QStyle, QStyleOptionButton

from geogui import paths
from geogui.gui.widgets.runs_panel import NAME, RunsPanel

RUN_NAME = "20260512-143012-geometric_fast-a3f9"  # as runlog.new_run_name makes them
DOCK_WIDTH = 340  # the Settings dock's minimum width, which the Runs dock shares as a tab


def _run_dir(name: str):
    path = paths.runs_dir() / name
    path.mkdir()
    (path / "meta.json").write_text("{not json")  # listed (as unreadable) without training a run
    return path


def _shown_name(panel: RunsPanel, path) -> str:
    """The name's text as the tree draws it: elided to the column's width less the tick box."""
    tree = panel.tree
    style = tree.style()
    tick = style.pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth, QStyleOptionButton(), tree)
    margins = 4 * style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, tree) + 6
    room = tree.header().sectionSize(NAME) - tick - margins
    return QFontMetrics(tree.font()).elidedText(panel.row(path)["Run"], tree.textElideMode(), room)


def test_a_run_name_shows_its_mode_and_suffix_at_the_default_dock_width(qtbot):
    path = _run_dir(RUN_NAME)
    panel = RunsPanel(paths.runs_dir, refresh_ms=60_000)
    qtbot.addWidget(panel)
    panel.resize(DOCK_WIDTH, 400)
    panel.show()
    qtbot.waitExposed(panel)
    panel.refresh()
    shown = _shown_name(panel, path)
    assert shown.endswith("geometric_fast-a3f9"), shown
    assert shown.startswith("20260512"), shown
    # The status keeps a place in view beside it.
    assert panel.tree.header().sectionSize(NAME) <= 0.8 * panel.width() + 1
    item = panel.tree.topLevelItem(0)
    assert item.toolTip(NAME).splitlines()[0] == RUN_NAME


def test_the_column_keeps_a_width_the_user_chose(qtbot):
    _run_dir(RUN_NAME)
    panel = RunsPanel(paths.runs_dir, refresh_ms=60_000)
    qtbot.addWidget(panel)
    panel.resize(DOCK_WIDTH, 400)
    panel.show()
    qtbot.waitExposed(panel)
    panel.tree.header().resizeSection(NAME, 120)  # as a drag of the column's edge does
    _run_dir("another-run")
    panel.refresh()
    panel.resize(DOCK_WIDTH + 100, 400)
    assert panel.tree.header().sectionSize(NAME) == 120


def test_the_rename_field_is_wide_enough_for_a_whole_run_name(qtbot):
    path = _run_dir(RUN_NAME)
    panel = RunsPanel(paths.runs_dir, refresh_ms=60_000)
    qtbot.addWidget(panel)
    panel.show()
    panel.refresh()
    panel.select(path)
    seen = {}

    def look_and_cancel():
        dialog = QApplication.activeModalWidget()
        field = dialog.findChild(QLineEdit)
        seen["text"], seen["width"] = field.text(), field.width()
        seen["needed"] = field.fontMetrics().horizontalAdvance(RUN_NAME)
        dialog.reject()

    QTimer.singleShot(0, look_and_cancel)
    panel.rename_button.click()
    assert seen["text"] == RUN_NAME
    assert seen["width"] > seen["needed"], seen
    assert path.is_dir()  # cancelled: not renamed
