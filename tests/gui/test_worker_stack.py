"""The training thread gets the stack of a Python thread, not macOS's 512 KiB QThread default: it runs
the recursive corpus reducer, pydantic and JSON parsing."""

from __future__ import annotations

from geogui.gui.worker import TrainingSession

from .conftest import tiny_settings


def test_the_training_thread_has_a_16_mib_stack(qtbot):
    session = TrainingSession(tiny_settings(steps=1))
    assert session.worker_thread.stackSize() == 16 * 2**20
    with qtbot.waitSignal(session.ended, timeout=60_000):
        session.start()
