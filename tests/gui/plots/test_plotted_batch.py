"""The status bar's step is the step the plots show: it follows the redraws, not the deliveries."""

from __future__ import annotations

import pytest

from geogui.gui.main_window import MainWindow
from geogui.engine.log_lines import batch_line
from geogui.rundir.reader import parse_columns

from tests.gui.conftest import synthetic_record


@pytest.fixture
def window(qtbot, tiny):
    window = MainWindow(tiny, persist=False)
    qtbot.addWidget(window)
    window.plots.timer.stop()  # the test decides when the plots redraw
    window.plots.start_run(8, 4)
    window.status.show_total(100)
    return window


def status_step(window) -> int:
    return int(window.status.progress_text.text().split()[1])


def plotted_last_x(window) -> int:
    return int(window.plots.batch_time_plot.listDataItems()[0].xData[-1])


def deliver(window, steps: range) -> None:
    window.controller._on_metrics([synthetic_record(step) for step in steps])  # the worker's slot


def test_the_status_bar_shows_the_last_plotted_step(window):
    deliver(window, range(1, 11))
    assert window.status.progress_text.text() == "step – / –"  # nothing plotted yet
    window.plots.redraw()
    assert plotted_last_x(window) == status_step(window) == 10
    deliver(window, range(11, 21))  # arrived, not drawn yet
    assert plotted_last_x(window) == status_step(window) == 10
    assert window.status.progress.value() == 10
    window.plots.redraw()
    assert plotted_last_x(window) == status_step(window) == 20


def test_a_run_read_from_disk_reports_its_last_plotted_step_too(window):
    columns = parse_columns("".join(batch_line(synthetic_record(step)) + "\n" for step in range(1, 8)).encode())
    window.plots.load_columns(columns)  # what opening or following a run hands the plots
    window.plots.redraw()
    assert plotted_last_x(window) == status_step(window) == 7
