"""The per-layer routing numbers in the CSV and the summary: the columns hold the records' values as the
log keeps them (3 decimals), empty where a batch has none; the summary averages them per layer and
names the experts a dead-expert notice reported; a run logged before they were measured exports with
the columns empty."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from geogui.cli.export import main as export_main
from geogui.engine.metrics import BatchRecord, EventKind, ModeChange, RunEvent
from geogui.engine.router_watch import RouterWatch
from geogui.rundir.export.routing_summary import dead_experts
from geogui.rundir.meta import read_meta
from geogui.rundir.export.tables import csv_header, routing_header, run_summary, summary_markdown, write_csv
from geogui.rundir.runlog import RunLog
from geogui.settings import Settings

from tests.rundir.synthetic_run import DEAD_EXPERT, DEAD_LAYER, DEAD_STEP, synthetic_run

OLD_RUN = Path(__file__).parent / "fixtures" / "run_written_by_0_1_0"
NAMES = ("E0", "E1", "E2", "E3", "G0", "G1", "G2", "G3")


def batch(step: int, mode: str, **routing) -> BatchRecord:
    return BatchRecord(
        step=step, epoch=step * 1e-3, mode=mode, penalty_weight=0.001, batch_time_s=0.02, data_time_s=1e-4,
        loss=3.0, task_loss=2.5, aux_loss=0.125, penalty=0.25, orthogonality=0.0625, specialization=0.03125,
        lr_model=3e-4, lr_rotation=1e-4, rotation_angles=None if mode == "standard" else np.zeros((8, 4)),
        expert_load=np.full(8, 0.125), ghost_activation=np.zeros(4), saturation=0.01, tokens_per_s=1e5,
        tokens_seen=step * 512, memory_bytes=5e8, wall_time_s=step * 0.02, **routing)


UTILIZATION = np.array([[1.23456, 0.0, 2.5, 0.26544, 1 / 3, np.nan, np.nan, np.nan]] * 4) + np.arange(4)[:, None] / 7
ENTROPY = np.array([0.98765, 0.5, 1.0, 0.12349])
OVERFLOW = np.array([0.0, 0.0125, 0.33333, 1e-5])
SIMILARITY = np.eye(8) + np.triu(np.full((8, 8), 0.4321) + np.arange(8)[None, :] / 100, 1)
SIMILARITY = np.triu(SIMILARITY) + np.triu(SIMILARITY, 1).T


@pytest.fixture
def routed_run(tmp_path) -> Path:
    """standard (routed), geometric (the similarity), geometric_fast (routed), and a dead-expert notice."""
    path = tmp_path / "run"
    log = RunLog(path, Settings())
    log.write(batch(1, "standard", expert_utilization=UTILIZATION, routing_entropy=ENTROPY, layer_overflow=OVERFLOW))
    log.write(ModeChange(2, "geometric", 0.001, "standard", 0.001))
    log.write(batch(2, "geometric", hidden_similarity=SIMILARITY))
    log.write(ModeChange(3, "geometric_fast", 0.001, "geometric", 0.001))
    log.write(batch(3, "geometric_fast", expert_utilization=UTILIZATION / 2, routing_entropy=ENTROPY / 2,
                    layer_overflow=OVERFLOW / 2))
    log.write(RunEvent(3, EventKind.EXPERT_DEAD, "layer 1: expert E1 has had no tokens for 200 steps"))
    log.close("stopped")
    return path


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def logged(value: float) -> str:
    """A routing number's cell: the 3 decimals the log keeps, as a float's text; empty for NaN."""
    return "" if np.isnan(value) else str(float(np.round(value, 3)))


def test_routing_columns_come_last_in_a_documented_order():
    model = Settings().model
    header = routing_header(model)
    assert csv_header(model)[-len(header):] == header
    assert header[:9] == ["util_l0_E0", "util_l0_E1", "util_l0_E2", "util_l0_E3", "util_l0_G0", "util_l0_G1",
                          "util_l0_G2", "util_l0_G3", "util_l1_E0"]
    assert header[31] == "util_l3_G3"
    assert header[32:40] == [*(f"entropy_l{layer}" for layer in range(4)), *(f"overflow_l{layer}" for layer in range(4))]
    similarity = header[40:]
    assert len(similarity) == 8 * 7 // 2  # the upper triangle only
    assert similarity[:3] == ["hsim_E0_E1", "hsim_E0_E2", "hsim_E0_E3"] and similarity[-1] == "hsim_G2_G3"
    assert len(set(csv_header(model))) == len(csv_header(model))
    # The loss terms and the penalty weight are columns too.
    assert {"task_loss", "aux_loss", "penalty", "orthogonality", "specialization",
            "penalty_weight"} <= set(csv_header(model))


def test_csv_holds_the_logged_routing_numbers_and_empty_cells_where_a_batch_has_none(routed_run, tmp_path):
    out = tmp_path / "run.csv"
    assert write_csv(routed_run, out) == 3
    header, (standard, geometric, fast) = read_rows(out)
    for row, scale in ((standard, 1.0), (fast, 0.5)):
        for layer in range(4):
            for e, name in enumerate(NAMES):
                assert row[f"util_l{layer}_{name}"] == logged(UTILIZATION[layer, e] * scale), (layer, name)
            assert row[f"entropy_l{layer}"] == logged(ENTROPY[layer] * scale)
            assert row[f"overflow_l{layer}"] == logged(OVERFLOW[layer] * scale)
        assert not any(row[name] for name in header if name.startswith("hsim_"))  # routed: no similarity
    assert standard["util_l0_E0"] == "1.235" and standard["util_l0_E1"] == "0.0"  # dead: 0, not empty
    assert standard["util_l0_G1"] == "" and standard["overflow_l3"] == "0.0"  # a dormant ghost: empty
    # geometric: routing forced, so no routing numbers; the similarity's upper triangle instead
    assert not any(geometric[name] for name in header if name.startswith(("util_", "entropy_", "overflow_")))
    for p in range(8):
        for q in range(p + 1, 8):
            assert geometric[f"hsim_{NAMES[p]}_{NAMES[q]}"] == logged(SIMILARITY[p, q])
    # the loss terms are the records' own
    assert [standard[name] for name in ("task_loss", "aux_loss", "penalty", "orthogonality", "specialization",
                                        "penalty_weight")] == ["2.5", "0.125", "0.25", "0.0625", "0.03125", "0.001"]


def test_pandas_reads_the_routing_columns_as_floats(routed_run, tmp_path):
    out = tmp_path / "run.csv"
    write_csv(routed_run, out)
    frame = pd.read_csv(out)
    routing = [name for name in frame.columns if name.startswith(("util_", "entropy_", "overflow_", "hsim_"))]
    assert len(routing) == 32 + 4 + 4 + 28
    assert (frame[routing].dtypes == np.float64).all()  # an all-empty column (util_l0_G1) too
    assert frame["util_l0_G1"].isna().all() and frame["step"].dtype == np.int64
    assert pd.api.types.is_string_dtype(frame["mode"])
    assert frame["entropy_l0"].tolist()[::2] == [0.988, 0.494] and np.isnan(frame["entropy_l0"][1])
    assert frame.loc[1, "hsim_E0_E1"] == pytest.approx(round(SIMILARITY[0, 1], 3), abs=0)


def test_summary_averages_routing_per_layer_and_names_the_dead_experts(routed_run, tmp_path):
    summary = run_summary(routed_run)
    layers = summary["routing_per_layer"]
    assert [entry["layer"] for entry in layers] == [0, 1, 2, 3]
    assert [entry["routed_batches"] for entry in layers] == [2, 2, 2, 2]  # not the geometric batch
    for layer, entry in enumerate(layers):  # of what the log keeps
        assert entry["mean_entropy"] == pytest.approx((round(ENTROPY[layer], 3) + round(ENTROPY[layer] / 2, 3)) / 2)
        assert entry["mean_overflow"] == pytest.approx((round(OVERFLOW[layer], 3) + round(OVERFLOW[layer] / 2, 3)) / 2)
    assert [entry["dead_experts"] for entry in layers] == [[], ["E1"], [], []]
    assert summary["dead_experts"] == [{"step": 3, "layer": 1, "expert": "E1",
                                        "message": "layer 1: expert E1 has had no tokens for 200 steps"}]
    off_diagonal = SIMILARITY.round(3)[~np.eye(8, dtype=bool)].mean()
    assert summary["hidden_similarity"] == [{"first_step": 2, "last_step": 2, "batches": 1,
                                             "mean_off_diagonal": pytest.approx(off_diagonal)}]
    text = summary_markdown(summary)
    assert f"| 1 | 2 | 0.375 | {layers[1]['mean_overflow']:.3f} | E1 (step 3) |" in text
    assert "| 0 | 2 | " in text and text.count("| 2 | 2 | ") == 1
    assert f"- hidden similarity (mean off-diagonal |cos|), geometric steps 2–2: {off_diagonal:.3f}" in text
    assert export_main([str(routed_run), "-o", str(tmp_path / "summary.json")]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["routing_per_layer"][1]["dead_experts"] == ["E1"]


def test_summary_of_a_long_run_per_layer_and_per_geometric_segment(tmp_path):
    run = synthetic_run(tmp_path / "run", 300)
    out = tmp_path / "run.csv"
    write_csv(run, out)
    frame = pd.read_csv(out)
    summary = run_summary(run)
    routed = frame["mode"] != "geometric"
    for layer, entry in enumerate(summary["routing_per_layer"]):
        assert entry["routed_batches"] == routed.sum() == 200
        # of the columns' float32: within float32's precision of the decimals' mean
        assert entry["mean_entropy"] == pytest.approx(frame[f"entropy_l{layer}"][routed].mean(), rel=1e-6)
        assert entry["dead_experts"] == ([DEAD_EXPERT] if layer == DEAD_LAYER else [])
    (segment,) = summary["hidden_similarity"]
    geometric = frame[~routed]
    upper = geometric.filter(like="hsim_")  # symmetric: its upper triangle's mean is the off-diagonal's
    assert (segment["first_step"], segment["last_step"], segment["batches"]) == (101, 200, 100)
    assert segment["mean_off_diagonal"] == pytest.approx(upper.to_numpy().mean(), rel=1e-6)
    assert f"{DEAD_EXPERT} (step {DEAD_STEP})" in summary_markdown(summary)


def test_the_notice_the_trainer_writes_is_the_one_the_summary_reads():
    """The summary finds the dead expert in the notice's words: the router watch's own message."""
    cfg = Settings().model
    layers = [SimpleNamespace(live_experts=np.array([True] * 4 + [False] * 4), update_ghosts=lambda overflow: None)
              for _ in range(cfg.n_layers)]
    watch = RouterWatch(cfg, dead_expert_steps=1)
    slots = np.tile([10.0, 12.0, 9.0, 11.0, 0, 0, 0, 0], (cfg.n_layers, 1))
    slots[2, 3] = 0.0
    _routing, events = watch.after_step(SimpleNamespace(moe_layers=layers), 7, slots)
    assert [event.event for event in events] == [EventKind.EXPERT_DEAD]
    assert dead_experts(events) == [{"step": 7, "layer": 2, "expert": "E3", "message": events[0].message}]
    assert dead_experts([RunEvent(9, EventKind.EXPERT_DEAD, "worded otherwise")]) == [
        {"step": 9, "layer": None, "expert": None, "message": "worded otherwise"}]


def test_a_run_logged_before_the_routing_numbers_exports_with_them_empty(tmp_path):
    run = Path(shutil.copytree(OLD_RUN, tmp_path / OLD_RUN.name))
    assert export_main([str(run), "-o", str(tmp_path / "run.csv")]) == 0
    header, rows = read_rows(tmp_path / "run.csv")
    routing = routing_header(read_meta(run).model_settings())
    assert len(routing) == 2 * 8 + 2 + 2 + 28 and header[-len(routing):] == routing  # its model: 2 layers
    assert len(rows) == 3 and rows[0]["loss"] == "5.537411212921143"
    assert all(row[name] == "" for row in rows for name in routing)
    frame = pd.read_csv(tmp_path / "run.csv")
    assert (frame[routing].dtypes == np.float64).all()
    summary = run_summary(run)
    assert summary["routing_per_layer"] == [] and summary["dead_experts"] == [] and summary["hidden_similarity"] == []
    assert "routing entropy" not in summary_markdown(summary)
    assert export_main([str(run), "-o", str(tmp_path / "summary.md")]) == 0
