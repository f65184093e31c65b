"""How the step runs, in the status bar: the cold compile time, a failed compilation, a refused bf16."""

from __future__ import annotations

from geogui.engine.metrics import RunEvent
from geogui.engine.step_options import CPU_BF16_NOTICE, PRECISION_FALLBACK
from geogui.gui.widgets.status_bar import WARNING_STYLE


def test_a_compiled_step_shows_its_cold_compile_time(window):
    status = window.status
    assert not status.step_options.isVisibleTo(status)
    window.controller.on_event(RunEvent(1, "step_compiled", "compiled the geometric step in 31.2 s"))
    assert status.step_options.isVisibleTo(status)
    assert status.step_options.text() == "compiled the geometric step in 31.2 s"
    assert status.step_options.styleSheet() == ""
    assert status.currentMessage() == "compiled the geometric step in 31.2 s"
    window.controller.on_event(RunEvent(40, "step_recompiled", "recompiled the geometric step in 12.0 s"))
    assert status.step_options.text() == "compiled the geometric step in 31.2 s"
    assert "recompiled the geometric step in 12.0 s" in status.step_options.toolTip()
    status.reset()  # a new run starts with nothing to say
    assert not status.step_options.isVisibleTo(status) and status.step_options.toolTip() == ""


def test_a_failed_compilation_and_a_refused_bf16_stay_as_warnings(window):
    status = window.status
    failure = "compiling the standard step failed (RuntimeError: no compiler); it runs uncompiled from now on"
    window.controller.on_event(RunEvent(1, PRECISION_FALLBACK, CPU_BF16_NOTICE))
    window.controller.on_event(RunEvent(1, "compile_failed", failure))
    assert status.step_options.text() == "fp32 (bf16 not used) · step not compiled"
    assert status.step_options.styleSheet() == WARNING_STYLE
    assert status.step_options.toolTip().splitlines() == [CPU_BF16_NOTICE, failure]
    assert status.currentMessage() == failure


def test_on_a_gpu_the_driver_memory_is_shown_beside_the_allocated(window):
    import dataclasses

    from tests.gui.conftest import synthetic_record

    status = window.status
    status.show_batch(synthetic_record(3))  # the CPU: no driver memory
    assert status.memory.text() == "mem 190.7 MiB"
    status.show_batch(dataclasses.replace(synthetic_record(4), driver_memory_bytes=3 * 2**30))
    assert status.memory.text() == "mem 190.7 MiB · driver 3.0 GiB"


def test_a_long_notice_is_elided_in_the_middle_and_whole_in_its_tooltip(window, qtbot):
    status = window.status
    long = ("Exported run-2026-01-01 for TensorBoard: 1,234 scalars and 56 histograms in "
            "/home/someone/tensorboard/logs/run-2026-01-01 (tensorboard --logdir /home/someone/tensorboard/logs)")
    window.resize(900, 600)
    status.show_notice(long)
    qtbot.waitUntil(lambda: status.notice.width() > 0, timeout=5000)
    shown = status.notice.text()
    assert status.currentMessage() == long
    assert "…" in shown and shown.startswith("Exported run-2026") and shown.endswith("logs)")
    assert status.notice.fontMetrics().horizontalAdvance(shown) <= status.notice.width()
    assert status.notice.toolTip() == long
    status.show_notice("Short")
    assert status.notice.text() == "Short" and status.notice.toolTip() == ""
