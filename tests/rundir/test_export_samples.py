"""Exports of what the model wrote: the CSV's accuracy column, the samples CSV, TensorBoard's
eval/accuracy and samples/text, and the summary's accuracy per mode."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from geogui.cli.export import main as export_main
from geogui.engine.metrics import BatchRecord
from geogui.engine.trainer import Trainer
from geogui.rundir.export.tables import run_summary, summary_markdown
from geogui.rundir.export.tensorboard import ACCURACY_TAG, SAMPLE_TAG, tensorboard_available
from geogui.rundir.recorder import record_run
from geogui.rundir.runlog import RunLog
from geogui.rundir.samples import read_samples

from tests.conftest import tiny_settings


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Standard for 4 steps, then geometric_fast for 4; evaluated every 2, a sample every 4."""
    path = tmp_path_factory.mktemp("samples") / "run"
    settings = tiny_settings(steps=8, mode="standard", eval_interval=2)
    settings = settings.model_copy(update={"sampling": settings.sampling.model_copy(update={
        "sample_interval": 4, "accuracy_questions": 2, "max_bytes": 5, "accuracy_interval": 0, "answer_bytes": 5})})
    trainer = Trainer(settings)
    for event in record_run(trainer, RunLog(path, settings)):
        if isinstance(event, BatchRecord) and event.step == 4:
            trainer.request_mode("geometric_fast")
    return path


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("plain") / "run"
    settings = tiny_settings(steps=4, eval_interval=2)
    list(record_run(Trainer(settings), RunLog(path, settings)))
    return path


def test_the_csv_has_an_accuracy_column_on_evaluation_rows(run_dir, tmp_path):
    assert export_main([str(run_dir), "-o", str(tmp_path / "run.csv")]) == 0
    table = pd.read_csv(tmp_path / "run.csv")
    evaluated = table[table["eval_loss"].notna()]
    assert evaluated["step"].tolist() == [2, 4, 6, 8]
    assert evaluated["accuracy"].between(0, 1).all()
    assert table.loc[table["eval_loss"].isna(), "accuracy"].isna().all()


def test_a_run_without_accuracy_has_no_accuracy_column(plain_run, tmp_path):
    assert export_main([str(plain_run), "-o", str(tmp_path / "run.csv")]) == 0
    assert "accuracy" not in pd.read_csv(tmp_path / "run.csv").columns
    assert run_summary(plain_run)["accuracy_per_mode"] == {}
    assert "answer accuracy" not in summary_markdown(run_summary(plain_run))


def test_the_jsonl_export_keeps_the_accuracy_lines(run_dir, tmp_path):
    assert export_main([str(run_dir), "-o", str(tmp_path / "run.jsonl")]) == 0
    lines = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines if line["kind"] == "accuracy"] == [2, 4, 6, 8]


def test_samples_export_as_csv(run_dir, tmp_path, capsys):
    assert export_main([str(run_dir), "-o", str(tmp_path / "samples.csv"), "--samples"]) == 0
    assert "2 samples" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "samples.csv", keep_default_na=False)
    assert table["step"].tolist() == [4, 8] and table["mode"].tolist() == ["standard", "geometric_fast"]
    assert table["prompt"].tolist() == [s.prompt for s in read_samples(run_dir)]  # newlines kept


def test_the_summary_gives_final_and_best_accuracy_per_mode(run_dir):
    summary = run_summary(run_dir)
    per_mode = summary["accuracy_per_mode"]
    assert set(per_mode) == {"standard", "geometric_fast"}
    assert per_mode["standard"]["final_step"] == 4 and per_mode["geometric_fast"]["final_step"] == 8
    assert per_mode["standard"]["best"] >= per_mode["standard"]["final"]
    text = summary_markdown(summary)
    assert "answer accuracy, standard: final" in text and "answer accuracy, geometric_fast: final" in text
    assert json.loads(json.dumps(summary)) == summary


@pytest.mark.skipif(not tensorboard_available(), reason="the optional tensorboard extra is not installed")
def test_tensorboard_gets_the_accuracy_scalar_and_a_text_per_sample(run_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert export_main([str(run_dir), "-o", str(tmp_path / "logs"), "--format", "tensorboard"]) == 0
    accumulator = EventAccumulator(str(tmp_path / "logs" / "run"), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    accuracy = accumulator.Scalars(ACCURACY_TAG)
    summary = run_summary(run_dir)["accuracy_per_mode"]
    assert [event.step for event in accuracy] == [2, 4, 6, 8]
    assert accuracy[-1].value == pytest.approx(summary["geometric_fast"]["final"])
    texts = accumulator.Tensors(f"{SAMPLE_TAG}/text_summary")  # where add_text puts a tag
    assert [event.step for event in texts] == [4, 8]
    first = texts[0].tensor_proto.string_val[0].decode()
    assert "standard" in first and read_samples(run_dir)[0].prompt.split("\n")[0] in first
