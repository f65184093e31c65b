"""The worker forwards what the model wrote: accuracies with the metrics, samples on their own signal."""

from __future__ import annotations

from PySide6.QtCore import Qt

from geogui.engine.samples import AccuracyRecord, SampleRecord
from geogui.gui.worker import TrainingSession

from .conftest import tiny_settings


def test_accuracies_arrive_with_the_metrics_and_samples_on_sample_taken(qtbot):
    settings = tiny_settings(steps=4, eval_interval=2)
    settings = settings.model_copy(update={"sampling": settings.sampling.model_copy(update={
        "sample_interval": 2, "accuracy_questions": 1, "max_bytes": 3, "accuracy_interval": 0, "answer_bytes": 3})})
    session = TrainingSession(settings, metrics_interval_s=0)
    metrics, samples = [], []
    direct = Qt.ConnectionType.DirectConnection
    session.worker.metrics_ready.connect(metrics.extend, direct)
    session.worker.sample_taken.connect(samples.append, direct)
    with qtbot.waitSignal(session.ended, timeout=60_000):
        session.start()
    assert [r.step for r in metrics if isinstance(r, AccuracyRecord)] == [2, 4]
    assert [s.step for s in samples] == [2, 4] and all(isinstance(s, SampleRecord) for s in samples)
