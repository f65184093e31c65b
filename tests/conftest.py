"""Fixtures for every test: no display, private config and data directories, no stray QThreads, and
the tiny model every test trains."""

from __future__ import annotations

import os

# Before pytest-qt creates the QApplication: tests never need (or get) a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from geogui.settings import Settings  # noqa: E402


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    """Each test gets its own settings and runs directories; the user's real files are never touched."""
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("GEOGUI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("GEOGUI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture(autouse=True)
def no_qthread_left_running(monkeypatch):
    """Fail any test that leaves a QThread running (a window closed mid-run must stop its thread)."""
    from PySide6.QtCore import QThread
    from shiboken6 import isValid

    started: list[QThread] = []
    original_start = QThread.start

    def recording_start(thread, *args, **kwargs):
        started.append(thread)
        return original_start(thread, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", recording_start)
    yield
    running = [thread for thread in started if isValid(thread) and thread.isRunning()]
    for thread in running:  # leave a clean process for the next test, then report
        thread.quit()
        thread.wait(10_000)
    if running:
        pytest.fail(f"{len(running)} QThread(s) still running after the test: "
                    f"{[thread.objectName() for thread in running]}")


# A model small enough that a batch takes milliseconds on a CPU: the one every test trains.
TINY_MODEL = {"d_model": 32, "n_layers": 2, "n_heads": 2, "seq_len": 32, "expert_hidden": 32}
TINY_RUN = {"steps": 20, "batch_size": 4, "eval_interval": 10, "eval_batches": 1, "warmup_steps": 2}
# No samples or answer accuracy unless a test asks for them: writing text costs a tiny run more than training.
TINY_SAMPLING = {"sample_interval": 0, "accuracy_questions": 0}
# The user's shared sample file, when this checkout sits beside it (tests that need it skip otherwise).
SHARED_LAMBDA_FILE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lambda_qa_sample.json"


def tiny_settings(**run) -> Settings:
    return Settings.model_validate({"run": {**TINY_RUN, **run}, "model": TINY_MODEL, "device": {"device": "cpu"},
                                    "sampling": TINY_SAMPLING})


@pytest.fixture
def tiny() -> Settings:
    return tiny_settings()
