"""TensorBoard interop: event files read back with tensorboard's own EventAccumulator must hold every
scalar of metrics.jsonl, point for point."""

from __future__ import annotations

import importlib.metadata
import io
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
from geogui.rundir.export.heatmap_png import CELL_PX, FRACTION, NAN_RGB, UTILIZATION, cell_colours
from geogui.rundir.export.tensorboard_routing import SIMILARITY_IMAGE_TAG, UTILIZATION_IMAGE_TAG

from tests.conftest import tiny_settings
from tests.rundir.synthetic_run import DEAD_EXPERT, DEAD_LAYER, DEAD_STEP, synthetic_run

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
            # absent from lines logged before they were measured
            for layer, (entropy, overflow) in enumerate(zip(record.get("routing_entropy") or [],
                                                            record.get("layer_overflow") or [])):
                add(f"routing_entropy/layer{layer}", record["step"], entropy)
                add(f"routing_overflow/layer{layer}", record["step"], overflow)
            for layer, row in enumerate(record.get("expert_utilization") or []):
                for name, utilization in zip(experts, row):
                    if utilization is not None:  # a dormant ghost has no point
                        add(f"routing_utilization/layer{layer}/{name}", record["step"], utilization)
            if record.get("hidden_similarity") is not None:
                similarity = np.array(record["hidden_similarity"])
                off_diagonal = similarity[~np.eye(len(similarity), dtype=bool)]
                add("geometric/hidden_similarity_mean", record["step"], off_diagonal.mean())
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


def images(accumulator, tag) -> list[tuple[int, np.ndarray]]:
    """(step, HWC uint8 pixels) of each image under `tag`, decoded as TensorBoard's image plugin
    reads them: a [width, height, PNG] string tensor."""
    from PIL import Image

    out = []
    for event in accumulator.Tensors(tag):
        width, height, png = event.tensor_proto.string_val
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        assert pixels.shape == (int(height), int(width), 3)
        out.append((event.step, pixels))
    return out


def cells(pixels: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The colour at the centre of each cell of a heatmap picture."""
    return pixels[CELL_PX // 2::CELL_PX, CELL_PX // 2::CELL_PX][:rows, :cols]


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

    # The per-layer routing numbers of the tiny model's 2 layers; its ghosts stay dormant: no points.
    assert {"routing_entropy/layer0", "routing_entropy/layer1", "routing_overflow/layer1",
            "routing_utilization/layer1/E3"} <= set(expected)
    assert len(expected["routing_entropy/layer1"]) == 8 and "routing_utilization/layer0/G0" not in expected
    # One utilization heatmap per step (8 planned: an image each), the logged utilization's colours.
    logged = {r["step"]: np.array(r["expert_utilization"], dtype=float) for r in read_lines(run_dir).lines
              if r["kind"] == "batch"}
    pictures = images(accumulator, "routing/utilization_heatmap")
    assert [step for step, _ in pictures] == list(range(1, 9))
    for step, pixels in pictures:
        assert pixels.shape == (2 * CELL_PX, 8 * CELL_PX, 3)
        assert np.array_equal(cells(pixels, 2, 8), cell_colours(logged[step], UTILIZATION)), step
        assert (cells(pixels, 2, 8)[:, 4:] == NAN_RGB).all()  # dormant ghosts: grey
    assert "Rows: layer 0 (top)" in accumulator.SummaryMetadata("routing/utilization_heatmap").summary_description

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
    accumulator, expected = assert_round_trip(out, logdir / "run")
    assert len(expected["loss/total"]) == 6 and len(expected["eval/loss"]) == 2
    # The live writer's images are the export's: the same steps, the same pixels.
    assert export_main([str(out), "-o", str(tmp_path / "exported"), "--format", "tensorboard"]) == 0
    live, exported = (images(a, UTILIZATION_IMAGE_TAG) for a in (accumulator, read_back(tmp_path / "exported" / "run")))
    assert [step for step, _ in live] == [step for step, _ in exported] == list(range(1, 7))
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(live, exported))


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


def logged_matrix(records, field: str, steps: range) -> np.ndarray:
    """The mean, cell by cell over the finite values, of a logged matrix over `steps`."""
    stack = np.array([[[np.nan if v is None else v for v in row] for row in r[field]] for r in records
                      if r["kind"] == "batch" and r["step"] in steps], dtype=float)
    finite = np.isfinite(stack)
    count = finite.sum(axis=0)
    return np.where(count > 0, np.where(finite, stack, 0.0).sum(axis=0) / np.maximum(count, 1), np.nan)


@needs_tensorboard
def test_heatmaps_are_means_since_the_last_image_and_dead_experts_are_text(tmp_path):
    """A 30-step stretch of a run planned for 500: an image every 5 steps (100 a run), each the mean
    of the 5 batches before it; the similarity only in geometric, the utilization only where routed."""
    run = synthetic_run(tmp_path / "run", 30)  # 1-10 standard, 11-20 geometric, 21-30 geometric_fast
    assert export_main([str(run), "-o", str(tmp_path / "logs"), "--format", "tensorboard"]) == 0
    accumulator = read_back(tmp_path / "logs" / "run")
    records = read_lines(run).lines
    utilization, similarity = images(accumulator, UTILIZATION_IMAGE_TAG), images(accumulator, SIMILARITY_IMAGE_TAG)
    assert [step for step, _ in utilization] == [5, 10, 25, 30] and [step for step, _ in similarity] == [15, 20]
    for step, pixels in utilization:
        mean = logged_matrix(records, "expert_utilization", range(step - 4, step + 1))
        assert np.array_equal(cells(pixels, 4, 8), cell_colours(mean, UTILIZATION)), step
    assert (cells(utilization[0][1], 4, 8)[:, 4:] == NAN_RGB).all()  # all 4 ghosts dormant in steps 1-5
    assert (cells(utilization[-1][1], 4, 8)[:, 4] != NAN_RGB).any(axis=-1).all()  # G0 woke at step 16
    assert (cells(utilization[0][1], 4, 8)[DEAD_LAYER, 3] == UTILIZATION.table()[0]).all()  # dead: deep blue
    for step, pixels in similarity:
        mean = logged_matrix(records, "hidden_similarity", range(step - 4, step + 1))
        assert pixels.shape == (8 * CELL_PX, 8 * CELL_PX, 3)
        assert np.array_equal(cells(pixels, 8, 8), cell_colours(mean, FRACTION)), step
    assert len(accumulator.Scalars("geometric/hidden_similarity_mean")) == 10

    (notice,) = accumulator.Tensors("dead_experts/text_summary")
    assert notice.step == DEAD_STEP
    assert f"layer {DEAD_LAYER}: expert {DEAD_EXPERT} has had no tokens" in notice.tensor_proto.string_val[0].decode()


@needs_tensorboard
def test_a_run_logged_before_the_routing_numbers_exports_without_them(tmp_path):
    import shutil
    from pathlib import Path

    fixture = Path(__file__).parent / "fixtures" / "run_written_by_0_1_0"
    run = Path(shutil.copytree(fixture, tmp_path / fixture.name))
    assert export_main([str(run), "-o", str(tmp_path / "logs"), "--format", "tensorboard"]) == 0
    accumulator, expected = assert_round_trip(run, tmp_path / "logs" / fixture.name)
    assert len(expected["loss/total"]) == 3
    assert not [tag for tag in accumulator.Tags()["scalars"] if tag.startswith(("routing", "geometric"))]
    assert not [tag for tag in accumulator.Tags()["tensors"] if "heatmap" in tag]
    with pytest.raises(KeyError):  # no image at all
        accumulator.PluginTagToContent("images")
