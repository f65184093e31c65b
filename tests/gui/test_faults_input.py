"""Fault suite: invalid values typed into the panels or given with `--settings` are refused with the
reason, and sizes that would not fit in memory are refused with the estimate."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from geogui.cli.train import main as train_main
from geogui.gui.main_window import MainWindow

from .conftest import tiny_settings

HUGE = {"run": {"batch_size": 4096}, "model": {"seq_len": 16384, "d_model": 1024, "n_heads": 8}}


@pytest.fixture
def window(qtbot):
    window = MainWindow(tiny_settings(), persist=False)
    qtbot.addWidget(window)
    return window


@pytest.mark.parametrize(("section", "field", "text", "message"), [
    ("run", "learning_rate", "inf", "finite number"),
    ("run", "penalty_weight", "1e400", "finite number"),
    ("run", "steps", "-3", "greater than or equal to 1"),
    ("run", "steps", "1e12", "valid integer"),
    ("model", "seq_len", "1000000", "less than or equal to 16384"),
    ("model", "d_model", "twelve", "valid integer"),
    ("run", "grad_clip", "NaN", "finite number"),
])
def test_a_bad_value_in_a_panel_is_refused_with_the_reason(window, section, field, text, message):
    window.panel.editor(section, field).set_value(text)
    assert message in window.panel.errors()[f"{section}.{field}"]
    assert not window.toolbar.start_action.isEnabled() and not window.start_run()


def test_a_size_that_would_not_fit_is_refused_in_the_panel_with_the_estimate(window):
    panel = window.panel
    panel.set_raw("run", "batch_size", "4096")
    panel.set_raw("model", "seq_len", "16384")
    message = panel.errors()["model"]
    assert message.startswith("would not fit in memory: a training step needs about ") and "GiB" in message
    assert panel.tabText(1) == "Model ⚠" and not window.toolbar.start_action.isEnabled()
    panel.set_raw("run", "batch_size", "4")
    assert "model" not in panel.errors() and window.toolbar.start_action.isEnabled()


@pytest.mark.parametrize(("content", "message"), [
    ('{"run": {"learning_rate": Infinity}}', "run.learning_rate"),
    ('{"run": {"penalty_weight": 1e400}}', "run.penalty_weight"),
    ('{"run": {"batch_size": -4}}', "run.batch_size"),
    ('{"model": {"seq_len": "long"}}', "model.seq_len"),
    (json.dumps(HUGE), "would not fit in memory"),
])
def test_geogui_train_settings_refuse_them_too(content, message, tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert train_main(["--settings", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and error.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_the_app_with_a_settings_file_that_would_not_fit_says_so_and_exits(tmp_path):
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(HUGE))
    result = subprocess.run(
        [sys.executable, "-m", "geogui", "--settings", str(path), "--run-steps", "2", "--screenshot",
         str(tmp_path / "x.png")], capture_output=True, text=True, timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 1
    assert "cannot start a run: would not fit in memory" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.png").exists()
