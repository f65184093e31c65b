from __future__ import annotations

from geogui.engine.metrics import EvalRecord
from geogui.gui.worker import MetricsBatcher

from .conftest import synthetic_record


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_fast_batches_are_sent_together_about_every_interval():
    clock = FakeClock()
    batcher = MetricsBatcher(0.05, clock)
    sent = []
    for step in range(1, 101):  # 1 ms per batch
        clock.now = step * 0.001
        ready = batcher.add(synthetic_record(step))
        if ready:
            sent.append([r.step for r in ready])
    assert sent[0] == [1]  # the first record goes out at once
    assert all(40 <= len(chunk) <= 50 for chunk in sent[1:])
    remaining = batcher.drain()
    assert [s for chunk in sent for s in chunk] + [r.step for r in remaining] == list(range(1, 101))
    assert batcher.drain() == []


def test_slow_batches_are_sent_one_by_one_and_eval_does_not_wait_for_the_next_batch():
    clock = FakeClock()
    batcher = MetricsBatcher(0.05, clock)
    assert batcher.add(synthetic_record(1))
    clock.now = 0.5
    assert [r.step for r in batcher.add(synthetic_record(2))] == [2]
    clock.now = 0.51  # an eval right after a batch: waiting for the next 0.5 s batch would be too late
    assert isinstance(batcher.add(EvalRecord(2, 3.0, 20.0))[0], EvalRecord)
