"""Runs that last, in the app: the Runs panel, opening and following runs on disk, overlays, resume,
export, and what the window says about damaged runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading

import numpy as np
import pandas
import pytest
from PySide6.QtWidgets import QMessageBox

from geogui import paths
from geogui.engine.checkpoint import latest_checkpoint
from geogui.engine.metrics import BatchRecord
from geogui.gui.widgets import runs_panel
from geogui.rundir.meta import RunStatus, read_meta, write_meta
from geogui.rundir.reader import read_lines
from geogui.rundir.recorder import record_run
from geogui.rundir.runlog import RunLog
from geogui.engine.trainer import Trainer
from geogui.gui.main_window import MainWindow
from geogui.gui.plotdata.run_source import TORN_TAIL_NOTE
from geogui.gui.plots.image_export import slug

from .conftest import synthetic_record, tiny_settings

TIMEOUT_MS = 60_000


def record(name: str, steps: int = 24, stop_at: int | None = None, **run):
    """A real run directory under the runs folder, trained to the end or stopped after `stop_at`."""
    settings = tiny_settings(steps=steps, checkpoint_interval=0, **run)
    trainer = Trainer(settings)
    path = paths.runs_dir() / name
    for event in record_run(trainer, RunLog(path, settings)):
        if stop_at is not None and isinstance(event, BatchRecord) and event.step == stop_at:
            trainer.stop()
    return path


def batches(path) -> list[dict]:
    return [r for r in read_lines(path).lines if r["kind"] == "batch"]


def overlay_curves(board) -> dict:
    """Each compared plot's curves, one a run."""
    return {plot: plot.comparison.curves for plot in board.all_plots if plot.comparison.curves}


def overlay_raw_curves(board) -> dict:
    return {plot: plot.comparison.raw_curves for plot in board.all_plots if plot.comparison.raw_curves}


def overlay_legends(board) -> dict:
    return {plot: plot.comparison.legend for plot in board.all_plots if plot.comparison.legend is not None}


def steps_plotted(window: MainWindow) -> list[int]:
    return window.plots.series.step.view().astype(int).tolist()


# -- the panel and opening a run ------------------------------------------------------------------
def test_the_panel_lists_runs_with_their_status_and_says_why_one_is_unreadable(window):
    finished = record("finished", steps=12, mode="standard")
    stopped = record("stopped", steps=40, stop_at=5)
    broken = paths.runs_dir() / "broken"
    broken.mkdir()
    (broken / "meta.json").write_text("{not json")
    window.runs_panel.refresh()
    panel = window.runs_panel
    assert {run.path.name for run in panel.runs()} == {"finished", "stopped", "broken"}
    row = panel.row(finished)
    assert [row[c] for c in ("Run", "Status", "Steps", "Modes")] == ["finished", "finished", "12", "Standard"]
    assert float(row["Final loss"]) == pytest.approx(batches(finished)[-1]["loss"], abs=1e-4)
    assert (panel.row(stopped)["Steps"], panel.row(stopped)["Status"]) == ("5", "stopped")
    row = panel.row(broken)
    assert row["Status"] == "unreadable" and row["Modes"].startswith("meta.json: unreadable")
    panel.select(stopped)
    assert panel.resume_button.isEnabled() and panel.delete_button.isEnabled()
    panel.select(finished)
    assert not panel.resume_button.isEnabled()


def test_the_panel_shows_the_step_a_run_being_written_has_reached(window):
    """meta.json is written at each event, not at each batch: a live run's row follows its log."""
    log = RunLog(paths.runs_dir() / "live", tiny_settings(steps=100))
    try:
        for step in range(1, 6):
            log.write(synthetic_record(step))
        window.runs_panel.refresh()
        row = window.runs_panel.row(log.path)
        assert (row["Status"], row["Steps"]) == ("running", "5")
        assert float(row["Final loss"]) == pytest.approx(synthetic_record(5).loss, abs=1e-4)
        log.write(synthetic_record(6))
        window.runs_panel.refresh()
        assert window.runs_panel.row(log.path)["Steps"] == "6"
        assert read_meta(log.path).steps_done == 0  # what meta.json says all along
    finally:
        log.close("stopped")


def test_opening_a_finished_run_redraws_its_plots_from_disk(window):
    path = record("done", steps=24)
    window.runs_panel.refresh()
    window.runs_panel.select(path)
    window.runs_panel.open_button.click()
    window.plots.redraw()
    logged = batches(path)
    assert window.current_run == path and window.windowTitle() == "done — geogui"
    assert window.plots.training.loss_raw_curve.xData.tolist() == list(range(1, 25))
    assert window.plots.training.loss_raw_curve.yData == pytest.approx([r["loss"] for r in logged])
    assert window.plots.batch_time_plot.listDataItems()[0].yData == pytest.approx(
        [r["batch_time_s"] * 1000 for r in logged])
    assert window.plots.training.eval_curve.xData.tolist() == [10, 20, 24]
    assert window.plots.training.norm_curves[1].yData == pytest.approx(  # the angles' default view
        [np.linalg.norm(r["rotation_angles"][1]) for r in logged])
    assert window.status.run_state.text() == "done: finished"
    assert window.status.progress.value() == 24
    assert window.plots.rotation.max_rotation == read_meta(path).model_settings().max_rotation  # the angles' scale
    assert window.notes == []


def test_ticking_two_runs_overlays_them_on_every_plot(window):
    fast = record("fast", steps=15, mode="geometric_fast")
    std = record("std", steps=20, mode="standard")
    window.open_run(fast)
    panel, plots = window.runs_panel, window.plots
    panel.refresh()
    panel.set_ticked(fast)
    assert not plots.comparing  # one ticked run is not a comparison
    panel.set_ticked(std)
    assert plots.comparing and [o.label for o in plots.overlays] == ["std", "fast"]
    every_plot = [plot for tab in plots.plot_tabs for plot in tab.plots]
    assert set(overlay_curves(plots)) == set(every_plot)
    for plot in every_plot:
        curves = overlay_curves(plots)[plot]
        assert len(curves) == 2
        assert curves[0].opts["pen"].color().name() != curves[1].opts["pen"].color().name()
        assert [label.text for _sample, label in overlay_legends(plots)[plot].items] == ["std", "fast"]
        # On every plot on screen (these runs have no answer accuracy: that plot is not shown).
        assert overlay_legends(plots)[plot].isVisible() == plot.isVisible()
        # The loss plot (and the loss terms'): each run's raw loss (task loss), faint, under it.
        raw = overlay_raw_curves(plots).get(plot, [])
        assert len(raw) == (2 if plot in (plots.training.loss_plot, plots.loss_terms.terms_plot) else 0)
        assert not any(item.isVisible() for item in plot.listDataItems() if item not in curves + raw)
    for index in range(len(plots.plot_tabs)):
        plots.redraw_tab(index)
    std_curve, fast_curve = overlay_curves(plots)[plots.batch_time_plot]
    assert std_curve.yData == pytest.approx([r["batch_time_s"] * 1000 for r in batches(std)])
    assert fast_curve.xData.tolist() == list(range(1, 16))  # the opened run is its own series
    assert plots.overlays[1].series is None
    assert np.isnan(overlay_curves(plots)[plots.training.angle_plot][0].yData).all()  # standard has no angles
    panel.set_ticked(std, False)
    assert not plots.comparing and plots.training.loss_raw_curve.isVisible() and plots.training.loss_plot.legend.isVisible()
    assert all(not overlay_legends(plots)[plot].isVisible() for plot in every_plot)


def test_the_live_run_is_one_of_the_overlaid_runs(qtbot, window):
    past = record("past", steps=10)
    assert window.start_run()
    qtbot.waitUntil(lambda: window.current_run is not None and len(window.plots.series) >= 3, timeout=TIMEOUT_MS)
    live = window.current_run
    window.runs_panel.refresh()
    assert window.windowTitle() == f"{live.name} — geogui"
    window.runs_panel.set_ticked(past)
    window.runs_panel.set_ticked(live)
    assert window.plots.comparing
    live_overlay = [o for o in window.plots.overlays if o.label == live.name][0]
    assert live_overlay.series is None  # the plots' own, growing series
    curve = overlay_curves(window.plots)[window.plots.batch_time_plot][window.plots.overlays.index(live_overlay)]

    def live_curve_grew() -> bool:
        window.plots.redraw()
        return curve.xData is not None and len(curve.xData) >= 15

    qtbot.waitUntil(live_curve_grew, timeout=TIMEOUT_MS)
    assert not window.runs_panel.delete(live)  # the app's own live run is not deleted from the panel
    with qtbot.waitSignal(window.session.ended, timeout=TIMEOUT_MS):
        window.stop_run()


# -- following a run another process writes -------------------------------------------------------
def pretend_live(meta_path, status="running", pid=None) -> None:
    meta = json.loads(meta_path.read_text())
    meta.update(status=status, pid=os.getpid() if pid is None else pid, host=socket.gethostname())
    meta.pop("writer", None)  # not a RunLog of this process: its liveness is its pid's
    meta_path.write_text(json.dumps(meta))


def test_following_a_directory_while_a_background_thread_writes_it(qtbot, window):
    source = record("source", steps=30)
    lines = (source / "metrics.jsonl").read_text().splitlines(keepends=True)
    followed = paths.runs_dir() / "followed"
    followed.mkdir()
    shutil.copy(source / "meta.json", followed / "meta.json")
    pretend_live(followed / "meta.json")  # this process "is writing it"
    (followed / "metrics.jsonl").write_text("")
    first_half, go_on = threading.Event(), threading.Event()

    def writer() -> None:
        with open(followed / "metrics.jsonl", "a") as handle:
            for i, line in enumerate(lines):
                if i == len(lines) // 2:
                    first_half.set()
                    go_on.wait(60)
                handle.write(line)
                handle.flush()
            handle.write(lines[0][: len(lines[0]) // 2])  # a torn last line, as a crash would leave
            handle.flush()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert first_half.wait(60)
        assert window.open_run(followed) and window.following
        assert window.status.run_state.text() == "followed"  # its trainer's state is beside it
        assert window.status.follow_state.text().startswith("following · ")
        half = len([line for line in lines[: len(lines) // 2] if json.loads(line)["kind"] == "batch"])
        qtbot.waitUntil(lambda: len(window.plots.series) == half, timeout=TIMEOUT_MS)
        go_on.set()
        qtbot.waitUntil(lambda: len(window.plots.series) == 30, timeout=TIMEOUT_MS)
    finally:
        go_on.set()
        thread.join()
    assert window.following  # still "running": the follow goes on
    pretend_live(followed / "meta.json", status="finished")
    qtbot.waitUntil(lambda: not window.following, timeout=TIMEOUT_MS)
    assert steps_plotted(window) == list(range(1, 31))
    assert window.plots.series.loss.view().tolist() == pytest.approx([r["loss"] for r in batches(source)])
    assert window.status.run_state.text() == "followed: finished"
    assert window.notes == [TORN_TAIL_NOTE] and "incomplete" in window.status.currentMessage()


def test_a_kill_9_run_shows_crashed_opens_and_resumes_with_its_step_numbers(qtbot, window, tmp_path):
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({
        "run": {"batch_size": 2, "eval_interval": 1000, "checkpoint_interval": 5, "steps": 100_000},
        "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "seq_len": 16, "expert_hidden": 16},
        "device": {"device": "cpu"}}))
    out = paths.runs_dir() / "killed"
    process = subprocess.Popen([sys.executable, "-m", "geogui.cli.train", "--settings", str(settings_file), "--out",
                                str(out), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        qtbot.waitUntil(lambda: latest_checkpoint(out) is not None and len(batches(out)) >= 12, timeout=120_000)
        window.runs_panel.refresh()
        assert window.runs_panel.row(out)["Status"] == "running"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    window.runs_panel.refresh()
    assert window.runs_panel.row(out)["Status"] == "crashed"
    assert window.open_run(out) and not window.following
    assert window.status.run_state.text() == "killed: crashed"
    logged = batches(out)
    assert window.plots.series.loss.view().tolist() == pytest.approx([r["loss"] for r in logged])

    window.runs_panel.select(out)
    assert window.runs_panel.resume_button.isEnabled()
    window.runs_panel.resume_button.click()
    assert window.session is not None and window.current_run == out
    qtbot.waitUntil(lambda: len(window.plots.series) >= len(logged) + 5, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.session.ended, timeout=TIMEOUT_MS):
        window.stop_run()
    checkpoint_step = read_meta(out).continuations[-1].from_step
    resumed = batches(out)
    assert [r["step"] for r in resumed] == list(range(1, len(resumed) + 1))
    assert len(resumed) > checkpoint_step
    assert steps_plotted(window) == list(range(1, len(resumed) + 1))
    assert read_meta(out).status is RunStatus.STOPPED
    assert [p.name for p in paths.runs_dir().iterdir()] == ["killed"]  # the same directory, no new one


def test_resume_from_the_panel_continues_the_step_numbers_in_the_same_directory(qtbot, window):
    path = record("halfway", steps=20, stop_at=8)
    window.runs_panel.refresh()
    window.runs_panel.select(path)
    window.runs_panel.resume_button.click()
    assert window.windowTitle() == "halfway — geogui"
    qtbot.waitUntil(lambda: window.session is None, timeout=TIMEOUT_MS)
    assert [r["step"] for r in batches(path)] == list(range(1, 21))
    assert steps_plotted(window) == list(range(1, 21))  # the earlier 8 first, then the 12 trained now
    assert window.plots.series.loss.view().tolist() == pytest.approx([r["loss"] for r in batches(path)])
    assert read_meta(path).status is RunStatus.FINISHED
    assert (window.runs_panel.row(path)["Steps"], window.runs_panel.row(path)["Status"]) == ("20", "finished")
    assert not window.resume_run(path)  # nothing left to continue
    assert "finished all its 20 steps" in window.warning_box.text()


# -- export ---------------------------------------------------------------------------------------
def test_export_csv_jsonl_summary_and_plot_images(window, tmp_path):
    path = record("exported", steps=18)
    window.open_run(path)
    assert window.exports.export_run_to(tmp_path / "out" / "run.csv")
    assert len(pandas.read_csv(tmp_path / "out" / "run.csv")) == len(batches(path)) == 18
    assert "18 batches" in window.status.currentMessage()
    assert window.exports.export_run_to(tmp_path / "out" / "run.jsonl")
    assert len((tmp_path / "out" / "run.jsonl").read_text().splitlines()) == len(read_lines(path).lines)
    assert window.exports.export_run_to(tmp_path / "out" / "summary.md")
    assert "# Run exported" in (tmp_path / "out" / "summary.md").read_text()

    written = window.exports.export_plots_to(tmp_path / "img" / "plots.png")
    names = [p.name for p in written]
    assert names == [f"plots-{slug(tab.title)}.png" for tab in window.plots.plot_tabs]  # a file per tab, in order
    assert names == ["plots-training.png", "plots-loss-terms.png", "plots-learning-rates.png", "plots-experts.png",
                     "plots-routing.png", "plots-throughput.png", "plots-rotation.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)
    loss = dict(window.plots.plot_items())["Training: Loss"]
    [svg] = window.exports.export_plots_to(tmp_path / "img" / "loss.svg", loss)
    assert svg.stat().st_size > 0 and "<svg" in svg.read_text()
    assert window.plots.tabs.currentIndex() == 0  # the tab shown before the export is shown again


def test_an_unwritable_export_target_is_a_message_and_the_app_stays_up(window, tmp_path):
    path = record("r", steps=5)
    window.open_run(path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert not window.exports.export_run_to(blocker / "run.csv")
    assert window.warning_box.isVisible() and "cannot write" in window.warning_box.text()
    assert not window.exports.export_plots_to(blocker / "plots.png")
    assert "cannot write" in window.warning_box.text()
    assert not window.exports.export_plots_to(tmp_path / "plots.gif")
    assert ".png or .svg" in window.warning_box.text()
    assert window.exports.export_run_to(tmp_path / "fine.csv")  # and the next export works


# -- damaged runs ---------------------------------------------------------------------------------
def test_a_torn_last_line_is_ignored_with_a_note(window):
    path = record("torn", steps=12)
    with open(path / "metrics.jsonl", "a") as handle:
        handle.write('{"kind": "batch", "step": 13, "lo')
    window.runs_panel.refresh()
    assert window.open_run(path)
    assert steps_plotted(window) == list(range(1, 13))
    assert window.notes == [TORN_TAIL_NOTE] and "incomplete" in window.status.currentMessage()


def test_missing_or_corrupt_meta_is_reported_and_the_records_still_plotted(window):
    path = record("nometa", steps=10)
    (path / "meta.json").unlink()
    assert window.open_run(path)
    assert len(window.plots.series) == 10 and window.plots.series.presentations == 8
    assert "meta.json: missing" in window.notes[0] and "meta.json: missing" in window.status.currentMessage()
    (path / "meta.json").write_text('{"half": ')
    assert window.open_run(path)
    assert "meta.json: unreadable" in window.notes[0]
    empty = paths.runs_dir() / "empty"
    empty.mkdir()
    assert not window.open_run(empty)
    assert window.warning_box.isVisible() and "meta.json: missing" in window.warning_box.text()
    assert not window.resume_run(path)
    assert "meta.json: unreadable" in window.warning_box.text()


def test_an_incompatible_checkpoint_is_reported(qtbot, window):
    garbage = record("garbage", steps=20, stop_at=4)
    (garbage / "checkpoints" / "latest.pt").write_bytes(b"\x00not a checkpoint")
    assert window.resume_run(garbage)
    qtbot.waitUntil(lambda: window.session is None, timeout=TIMEOUT_MS)
    assert "not a readable checkpoint" in window.error_box.text()
    assert read_meta(garbage).status is RunStatus.STOPPED  # refused before the run directory was touched
    window.error_box.close()

    other = record("other", steps=20, stop_at=4)
    meta = read_meta(other)
    meta.settings["model"]["d_model"] = 64
    write_meta(other, meta)
    assert window.resume_run(other)
    qtbot.waitUntil(lambda: window.session is None, timeout=TIMEOUT_MS)
    assert "the checkpoint's model differs from these settings: d_model 32 -> 64" in window.error_box.text()
    assert window.toolbar.start_action.isEnabled()
    window.error_box.close()


# -- rename and delete ----------------------------------------------------------------------------
def test_rename_and_delete_from_the_panel(window, monkeypatch):
    path = record("old-name", steps=5)
    keep = record("keep", steps=5)
    window.open_run(path)
    panel = window.runs_panel
    panel.refresh()
    panel.select(path)
    monkeypatch.setattr(runs_panel, "ask_new_name", lambda *args: "new-name")
    panel.rename_button.click()
    renamed = paths.runs_dir() / "new-name"
    assert renamed.is_dir() and not path.exists() and read_meta(renamed).name == "new-name"
    assert window.current_run == renamed and window.windowTitle() == "new-name — geogui"
    assert panel.selected_path() == renamed
    panel.select(keep)
    monkeypatch.setattr(runs_panel, "ask_new_name", lambda *args: "new-name")
    panel.rename_button.click()
    assert keep.is_dir() and "a run with that name exists" in window.status.currentMessage()

    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: asked.append(args) or
                        QMessageBox.StandardButton.Cancel)
    panel.select(renamed)
    panel.delete_button.click()
    assert asked and renamed.is_dir()  # asked, and "Cancel" kept it
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    panel.delete_button.click()
    assert not renamed.exists() and [run.name for run in panel.runs()] == ["keep"]
    assert window.current_run is None and window.windowTitle() == "geogui"
    assert read_lines(keep, rewind=False).lines  # the other run is untouched
