"""TensorBoard interop: event files read back with tensorboard's own EventAccumulator must hold every
scalar of metrics.jsonl, point for point."""

from __future__ import annotations

import importlib.metadata
import json
import math

import numpy as np
import pytest

from geogui.cli.export import main as export_main
from geogui.cli.train import main
from geogui.rundir.export import tensorboard as tensorboard_export
from geogui.engine.metrics import BatchRecord
from geogui.rundir.meta import read_meta
from geogui.rundir.reader import read_lines
from geogui.rundir.recorder import record_run
from geogui.rundir.runlog import RunLog
from geogui.rundir.export.tensorboard import BATCH_SCALARS, EVAL_SCALARS, INSTALL_HINT, tensorboard_available
from geogui.engine.trainer import Trainer

from tests.conftest import tiny_settings

needs_tensorboard = pytest.mark.skipif(
    not tensorboard_available(),
    reason='the optional tensorboard extra is not installed (pip install "geogui[tensorboard]"); '
           "make test installs it")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real run: 4 standard batches, then 4 geometric_fast, evaluated every 4 steps."""
    path = tmp_path_factory.mktemp("tensorboard") / "run"
    settings = tiny_settings(steps=8, mode="standard", eval_interval=4)
    trainer = Trainer(settings)
    for event in record_run(trainer, RunLog(path, settings)):
        if isinstance(event, BatchRecord) and event.step == 4:
            trainer.request_mode("geometric_fast")
    return path


def expected_scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar the event files must hold, (step, value) in order, straight from metrics.jsonl."""
    model = read_meta(run_dir).model_settings()
    experts = model.expert_names
    ghosts = experts[model.num_experts:]
    out: dict[str, list[tuple[int, float]]] = {}

    def add(tag, step, value):
        out.setdefault(tag, []).append((step, math.nan if value is None else value))

    for record in read_lines(run_dir).lines:
        if record["kind"] == "batch":
            for field, tag in BATCH_SCALARS.items():
                add(tag, record["step"], record[field])
            for p, row in enumerate(record["rotation_angles"] or []):
                for i, angle in enumerate(row):
                    add(f"angles/{experts[p]}_d{i}", record["step"], angle)
            for name, load in zip(experts, record["expert_load"]):
                add(f"experts/load_{name}", record["step"], load)
            for name, activation in zip(ghosts, record["ghost_activation"]):
                add(f"experts/ghost_activation_{name}", record["step"], activation)
        elif record["kind"] == "eval":
            for field, tag in EVAL_SCALARS.items():
                add(tag, record["step"], record[field])
        elif record["kind"] == "accuracy":  # a run with the default sampling measures it at each evaluation
            add("eval/accuracy", record["step"], record["right"] / record["asked"])
    return out


def read_back(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def assert_round_trip(run_dir, logdir):
    expected = expected_scalars(run_dir)
    accumulator = read_back(logdir)
    assert set(accumulator.Tags()["scalars"]) == set(expected)
    for tag, points in expected.items():
        events = accumulator.Scalars(tag)
        assert [e.step for e in events] == [step for step, _ in points], tag
        # TensorBoard keeps scalars as float32: the values must be exactly the float32 of the logged ones.
        assert np.array_equal(np.array([e.value for e in events], dtype=np.float32),
                              np.array([value for _, value in points], dtype=np.float32), equal_nan=True), tag
    return accumulator, expected


@needs_tensorboard
def test_export_round_trip_equals_metrics_jsonl(run_dir, tmp_path, capsys):
    logdir = tmp_path / "logs"
    assert export_main([str(run_dir), "-o", str(logdir), "--format", "tensorboard"]) == 0
    assert "8 batches" in capsys.readouterr().out
    accumulator, expected = assert_round_trip(run_dir, logdir / "run")
    # The names the issue promises, and the standard stretch without angles.
    assert len(expected["loss/total"]) == 8 and len(expected["eval/loss"]) == 2
    assert [step for step, _ in expected["angles/G3_d3"]] == [5, 6, 7, 8]
    assert {"time/batch_s", "lr/model", "lr/rotation", "throughput/tokens_per_s", "memory/bytes",
            "loss/task", "loss/aux", "loss/penalty", "experts/load_E0", "experts/load_G3"} <= set(expected)

    text = accumulator.Tensors("mode_changes/text_summary")
    assert [event.step for event in text] == [5]
    assert "standard → geometric_fast" in text[0].tensor_proto.string_val[0].decode()

    from tensorboard.plugins.hparams import plugin_data_pb2

    content = accumulator.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["run.mode"].string_value == "standard" and hparams["model.d_model"].number_value == 32


@needs_tensorboard
def test_export_refuses_to_write_the_same_run_twice(run_dir, tmp_path, capsys):
    logdir = tmp_path / "logs"
    assert export_main([str(run_dir), "-o", str(logdir), "--format", "tensorboard"]) == 0
    assert export_main([str(run_dir), "-o", str(logdir), "--format", "tensorboard"]) == 2
    assert "already holds TensorBoard event files" in capsys.readouterr().err
    assert len(list((logdir / "run").glob("events.out.tfevents.*"))) == 1


@needs_tensorboard
def test_train_mirrors_into_tensorboard_while_training(tmp_path, capsys):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({
        "run": {"batch_size": 2, "eval_interval": 3, "eval_batches": 1},
        "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "seq_len": 16, "expert_hidden": 16},
        "device": {"device": "cpu"}}))
    out, logdir = tmp_path / "run", tmp_path / "logs"
    assert main(["--settings", str(settings), "--steps", "6", "--out", str(out), "--quiet",
                 "--tensorboard", str(logdir)]) == 0
    assert f"tensorboard --logdir {logdir}" in capsys.readouterr().err
    _accumulator, expected = assert_round_trip(out, logdir / "run")
    assert len(expected["loss/total"]) == 6 and len(expected["eval/loss"]) == 2


def test_without_the_extra_the_flag_and_the_export_say_how_to_install(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tensorboard_export, "tensorboard_available", lambda: False)
    assert export_main([str(run_dir), "-o", str(tmp_path / "logs"), "--format", "tensorboard"]) == 2
    assert INSTALL_HINT in capsys.readouterr().err
    out = tmp_path / "run"
    assert main(["--steps", "2", "--out", str(out), "--tensorboard", str(tmp_path / "logs")]) == 2
    assert 'pip install "geogui[tensorboard]"' in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "logs").exists()  # refused before anything was written


def test_the_base_install_does_not_pull_tensorboard():
    from packaging.requirements import Requirement

    requirements = [Requirement(r) for r in importlib.metadata.requires("geogui") or []]
    tensorboard = [r for r in requirements if r.name == "tensorboard"]
    assert tensorboard
    for requirement in tensorboard:  # only with the extra, never in a plain install
        assert requirement.marker is not None and not requirement.marker.evaluate({"extra": ""})
        assert requirement.marker.evaluate({"extra": "tensorboard"})


@needs_tensorboard
def test_an_unwritable_logdir_is_refused_before_the_run_starts(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = tmp_path / "run"
    assert main(["--steps", "2", "--out", str(out), "--tensorboard", str(blocker / "logs")]) == 2
    assert f"--tensorboard {blocker / 'logs'}: cannot write" in capsys.readouterr().err
    assert not out.exists()
