"""Samples and answer accuracy taken during training: when, into which file, and outside the timing."""

import time

import numpy as np
import pytest

from geogui.engine import run_samples
from geogui.engine.answer_accuracy import AccuracyResult
from geogui.engine.generation import Generated
from geogui.engine.metrics import BatchRecord
from geogui.engine.samples import AccuracyRecord, SampleRecord
from geogui.engine.trainer import Trainer
from geogui.rundir.reader import read_columns, read_records
from geogui.rundir.recorder import record_run
from geogui.rundir.runlog import RunLog
from geogui.rundir.samples import read_samples

from tests.conftest import tiny_settings


def _sampling(settings, **values):
    # Accuracy at every evaluation and short answers, unless a test says otherwise.
    values = {"accuracy_interval": 0, "answer_bytes": values.get("max_bytes", 4), **values}
    return settings.model_copy(update={"sampling": settings.sampling.model_copy(update=values)})


def _record(settings, path):
    trainer = Trainer(settings)
    return list(record_run(trainer, RunLog(path, settings)))


def test_samples_every_k_steps_into_samples_jsonl_and_accuracy_at_each_evaluation(tmp_path):
    settings = _sampling(tiny_settings(steps=6, eval_interval=3), sample_interval=2, accuracy_questions=2,
                         max_bytes=6)
    events = _record(settings, tmp_path / "run")
    samples = read_samples(tmp_path / "run")
    assert [s.step for s in samples] == [2, 4, 6]
    first = samples[0]
    assert first.prompt.startswith("Q: ") and first.mode == settings.run.mode.value
    assert first.expected is not None and first.right is False  # six bytes of an untrained model
    assert len(first.experts) == settings.model.n_layers and len({len(layer) for layer in first.experts}) == 1
    # The same prompt, generator and seed each time: the samples are comparable from step to step.
    assert {s.prompt for s in samples} == {first.prompt}
    accuracies = [r for r in read_records(tmp_path / "run") if isinstance(r, AccuracyRecord)]
    assert [(a.step, a.asked) for a in accuracies] == [(3, 2), (6, 2)]
    columns = read_columns(tmp_path / "run")
    assert columns.accuracy_step.tolist() == [3.0, 6.0]
    assert all(0 <= a <= 1 for a in columns.accuracy)
    assert not (tmp_path / "run" / "metrics.jsonl").read_text().count('"sample"')  # samples stay apart
    assert sum(isinstance(e, SampleRecord) for e in events) == 3


def test_plain_text_data_has_samples_of_its_text_but_no_accuracy(tmp_path):
    text = tmp_path / "plain.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 200)
    settings = _sampling(tiny_settings(steps=4, eval_interval=2), sample_interval=2, accuracy_questions=4,
                         max_bytes=4)
    settings = settings.model_copy(update={"data": settings.data.model_copy(update={"path": text})})
    _record(settings, tmp_path / "run")
    samples = read_samples(tmp_path / "run")
    assert [s.step for s in samples] == [2, 4]
    assert len(samples[0].prompt.encode()) == 32 and samples[0].right is None and samples[0].expected is None
    assert '"accuracy"' not in (tmp_path / "run" / "metrics.jsonl").read_text()
    columns = read_columns(tmp_path / "run")
    assert len(columns.accuracy_step) == 0 and columns.accuracies == []


def test_sampling_off_writes_no_samples_file(tmp_path):
    _record(tiny_settings(steps=3), tmp_path / "run")
    assert not (tmp_path / "run" / "samples.jsonl").exists()
    assert read_samples(tmp_path / "run") == []


DELAY_S = 1000.0  # on the faked clock: no batch of any machine takes that long


def test_the_batch_after_a_sample_and_an_accuracy_does_not_include_their_time(monkeypatch):
    """A sample and an accuracy check that each take DELAY_S on the trainer's clock, which is faked:
    no sleeping, and no bound on how fast this machine trains a batch."""
    real_clock, offset = time.perf_counter, [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: real_clock() + offset[0])

    def slow_generate(model, rotator, prompt, sampling, mode, **kwargs):
        offset[0] += DELAY_S  # what a slow device would take to write
        return Generated(prompt, "x", 1, np.zeros((2, 1), dtype=int), DELAY_S)

    def slow_accuracy(model, rotator, questions, mode, max_bytes, **kwargs):
        offset[0] += DELAY_S
        return AccuracyResult(0, len(questions), 0, DELAY_S)

    monkeypatch.setattr(run_samples, "generate", slow_generate)
    monkeypatch.setattr(run_samples, "answer_accuracy", slow_accuracy)
    settings = _sampling(tiny_settings(steps=3, eval_interval=2), sample_interval=2, accuracy_questions=1)
    events = list(Trainer(settings).run())
    kinds = [e.kind for e in events if e.kind in ("batch", "eval", "accuracy", "sample")]
    assert kinds == ["batch", "batch", "eval", "accuracy", "sample", "batch", "eval", "accuracy"]
    batches = {e.step: e for e in events if isinstance(e, BatchRecord)}
    assert batches[3].wall_time_s - batches[2].wall_time_s >= 2 * DELAY_S  # the delay was between them
    assert batches[3].batch_time_s < DELAY_S and batches[3].data_time_s < DELAY_S


@pytest.mark.parametrize("mode", ["standard", "geometric"])
def test_a_sample_is_taken_in_the_current_mode(tmp_path, mode):
    settings = _sampling(tiny_settings(steps=2, mode=mode), sample_interval=2, max_bytes=3, accuracy_questions=0)
    _record(settings, tmp_path / "run")
    (sample,) = read_samples(tmp_path / "run")
    assert sample.mode == mode
    assert all(set(layer) == {-1} for layer in sample.experts) == (mode == "geometric")


def test_accuracy_is_checked_every_accuracy_interval_steps_at_an_evaluation_and_at_the_last(tmp_path):
    settings = _sampling(tiny_settings(steps=7, eval_interval=1), accuracy_questions=1, accuracy_interval=3,
                         answer_bytes=2)
    records = _record(settings, tmp_path / "run")
    assert [r.step for r in records if isinstance(r, AccuracyRecord)] == [3, 6, 7]
