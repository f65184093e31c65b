"""The readout under the plots names the run under the cursor, never one shown before."""

from __future__ import annotations

from pathlib import Path

from ..conftest import synthetic_record


def show_run(window, name: str) -> None:
    window.controller.set_current_run(Path(name))
    window.plots.start_run(8, 4)
    window.plots.append([synthetic_record(step) for step in range(1, 30)])
    window.plots.redraw()


def readout_at_step(window, step: float) -> str:
    plot = window.plots.training.loss_plot if hasattr(window.plots.training, "loss_plot") else \
        window.plots.batch_time_plot
    return window.plots.show_crosshair(plot, step, 0.0)


def test_the_readout_names_the_run_shown_now(window):
    show_run(window, "run-a")
    assert readout_at_step(window, 10).startswith("run-a · step 10")
    window.controller.set_current_run(Path("run-b"))  # e.g. renamed, or another run opened or followed
    assert "run-a" not in window.plots.readout.text()  # the line read before no longer stands
    window.plots.redraw()
    assert readout_at_step(window, 10).startswith("run-b · step 10")


def test_a_new_run_or_overlays_clear_the_readout(window):
    show_run(window, "run-a")
    readout_at_step(window, 10)
    window.plots.start_run(8, 4)
    assert window.plots.readout.text().strip() == ""
    show_run(window, "run-a")
    readout_at_step(window, 10)
    window.plots.set_overlays([])
    assert window.plots.readout.text().strip() == ""
