from __future__ import annotations

import json
import math

from geogui.engine.samples import AccuracyRecord, SampleRecord


def test_a_sample_survives_its_json_line():
    sample = SampleRecord(step=40, mode="geometric_fast", prompt="Q: (λx.x) y\nReasoning:\n", text="A: y\n\n",
                          temperature=0.0, top_k=0, seconds=0.25, right=True, expected="y",
                          experts=((0, 1, 2), (3, 3, 1)))
    assert SampleRecord.from_json(json.loads(json.dumps(sample.to_json()))) == sample


def test_accuracy_survives_its_json_line_and_says_nothing_when_nothing_was_asked():
    record = AccuracyRecord(step=50, mode="standard", right=3, asked=32, unparsed=5, seconds=1.5)
    assert AccuracyRecord.from_json(json.loads(json.dumps(record.to_json()))) == record
    assert record.fraction == 3 / 32
    assert math.isnan(AccuracyRecord(step=1, mode="standard", right=0, asked=0, unparsed=0, seconds=0).fraction)
