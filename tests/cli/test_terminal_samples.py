"""The terminal's lines for what the model wrote: an accuracy line, a sample's first line."""

from __future__ import annotations

import io
from pathlib import Path

from geogui.cli.terminal import ProgressBar, report_event
from geogui.engine.samples import AccuracyRecord, SampleRecord


def test_accuracy_and_a_samples_first_line_go_below_the_bar():
    stream = io.StringIO()
    bar = ProgressBar(100, stream=stream)
    report_event(AccuracyRecord(50, "standard", 3, 32, 1, 0.5), Path("run"), bar)
    report_event(SampleRecord(50, "standard", "Q: x\nReasoning:\n", "x\x07y\nA: x\n\n", 0.8, 0, 0.1, right=False,
                              expected="z"), Path("run"), bar)
    lines = stream.getvalue().splitlines()
    assert "step 50: 3/32 held-out answers right (9%)" in lines
    assert "step 50: sample: x·y  (wrong; expected z)" in lines
