"""The columnar reader: the same values as the line-by-line record path (`reader.read_records`) for
runs in every line form, chunked, followed, damaged, cached, and the compact batch line's round trip."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import numpy as np
import pytest

from geogui.rundir import reader as run_reader
from geogui.rundir import segments as run_segments
from geogui.engine.metrics import BatchRecord, EvalRecord, ModeChange, RunEvent
from geogui.engine.log_lines import DEVICE_FLOAT32, ROUNDED, batch_line, normalize_line, record_from_json
from geogui.rundir.recorder import record_run
from geogui.rundir.columns import MATRIX_FIELDS, SCALAR_FIELDS, ReadCancelled
from geogui.rundir.layout import CACHE_DIR
from geogui.rundir.reader import MetricsReader, parse_columns, read_columns, read_lines, read_records
from geogui.rundir.runlog import RunLog
from geogui.engine.trainer import Trainer

from tests.conftest import tiny_settings


def default_shape_record(step: int, rng: np.random.Generator, mode: str = "geometric") -> BatchRecord:
    """A batch of the default model's shape (8 presentations x 4 angles, 4 + 4 experts), with values
    as the trainer makes them: float32 loss terms and angles, float64 host values."""
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    return BatchRecord(
        step=step, epoch=step * 1.2345e-4, mode=mode, penalty_weight=0.001, batch_time_s=0.02 + 0.01 * rng.random(),
        data_time_s=2e-4 * rng.random(), loss=f32(3 + rng.random()), task_loss=f32(3 + rng.random()),
        aux_loss=f32(0.01 * rng.random()), penalty=f32(1e-4 * rng.random()), orthogonality=f32(rng.random()),
        specialization=f32(rng.random()), lr_model=3e-4 * rng.random(), lr_rotation=1e-4 * rng.random(),
        rotation_angles=None if mode == "standard" else rng.normal(0, 0.5, (8, 4)).astype(np.float32).astype(float),
        expert_load=rng.dirichlet(np.ones(8) * 5), ghost_activation=rng.random(4), saturation=0.05 * rng.random(),
        tokens_per_s=1e5 * (1 + rng.random()), tokens_seen=step * 4096, memory_bytes=float(rng.integers(1 << 28, 1 << 33)),
        wall_time_s=step * 0.0234567 + rng.random() * 1e-3, driver_memory_bytes=float(rng.integers(1 << 28, 1 << 34)),
        # the routing numbers as a line keeps them: to 3 decimals (a dormant ghost's utilization is NaN)
        **(dict(hidden_similarity=np.round(rng.random((8, 8)), 3)) if mode == "geometric" else dict(
            expert_utilization=np.round(np.where(np.arange(8) < 6, rng.random((4, 8)) * 2, np.nan), 3),
            routing_entropy=np.round(rng.random(4), 3), layer_overflow=np.round(0.1 * rng.random(4), 3))),
    )


def long_line(record) -> str:
    """A line exactly as the log wrote it before the compact form (and as every run on disk has it)."""
    return json.dumps(record.to_json())


def write_run(path, records, compact: bool) -> None:
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "metrics.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            text = batch_line(record) if compact and isinstance(record, BatchRecord) else long_line(record)
            handle.write(text + "\n")


def assert_same_as_records(columns, records, exact: bool = True) -> None:
    batches = [r for r in records if isinstance(r, BatchRecord)]
    assert len(columns) == len(batches)
    for name in SCALAR_FIELDS:
        expected = np.array([getattr(b, name) for b in batches], dtype=np.float64)
        if exact:
            assert np.array_equal(getattr(columns, name), expected, equal_nan=True), name
        elif name == "wall_time_s":  # the clock is kept to the microsecond
            assert np.abs(getattr(columns, name) - expected).max() <= 5e-7
        else:
            assert np.array_equal(getattr(columns, name).astype(np.float32), expected.astype(np.float32),
                                  equal_nan=True), name
    for name in MATRIX_FIELDS:
        width = getattr(columns, name).shape[1]
        rows = [np.full(width, np.nan) if getattr(b, name) is None else getattr(b, name).ravel() for b in batches]
        expected = np.array(rows, dtype=np.float32).reshape(len(batches), -1)
        if name in ROUNDED:  # a line keeps the routing numbers to 3 decimals
            assert np.allclose(getattr(columns, name), expected, rtol=0, atol=5.1e-4, equal_nan=True), name
        else:
            assert np.array_equal(getattr(columns, name), expected, equal_nan=True), name
    assert columns.mode_names() == [b.mode for b in batches]
    evals = [r for r in records if isinstance(r, EvalRecord)]
    assert columns.eval_step.tolist() == [e.step for e in evals]
    assert np.array_equal(columns.eval_loss, [e.loss for e in evals], equal_nan=True)
    assert np.array_equal(columns.eval_perplexity, [e.perplexity for e in evals], equal_nan=True)
    assert columns.mode_changes == [r for r in records if isinstance(r, ModeChange)]
    assert columns.events == [r for r in records if isinstance(r, RunEvent)]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A real run, 4 standard batches then 4 geometric_fast, evaluated every 3 steps, and the same
    records written as today's long lines."""
    root = tmp_path_factory.mktemp("columns")
    settings = tiny_settings(steps=8, mode="standard", eval_interval=3)
    trainer = Trainer(settings)
    events = []
    for event in record_run(trainer, RunLog(root / "run", settings)):
        events.append(event)
        if isinstance(event, BatchRecord) and event.step == 4:
            trainer.request_mode("geometric_fast")
    logged = [e for e in events if isinstance(e, (BatchRecord, EvalRecord, ModeChange, RunEvent))]
    write_run(root / "long", logged, compact=False)
    shutil.copy(root / "run" / "meta.json", root / "long" / "meta.json")
    return root, logged


def test_a_run_in_todays_long_lines_reads_the_same_as_the_record_path(real_run):
    root, logged = real_run
    records = read_records(root / "long")
    columns = read_columns(root / "long")
    assert_same_as_records(columns, records)
    assert columns.skipped_lines == 0
    assert np.isnan(columns.rotation_angles[:4]).all() and not np.isnan(columns.rotation_angles[4:]).any()
    assert columns.rotation_angles.shape == (8, 32) and columns.expert_load.shape == (8, 8)
    # and the trainer's own values, through the long lines, exactly
    assert_same_as_records(columns, logged)


def test_a_run_the_log_writes_reads_the_same_as_the_record_path(real_run):
    root, logged = real_run
    columns = read_columns(root / "run")
    assert_same_as_records(columns, read_records(root / "run"))
    assert_same_as_records(columns, logged, exact=False)
    batches = [r for r in logged if isinstance(r, BatchRecord)]
    for name in DEVICE_FLOAT32[:-1]:  # the device's float32 values come back exactly
        assert getattr(columns, name).tolist() == [getattr(b, name) for b in batches], name


def test_records_come_back_in_the_logged_order(real_run):
    root, _ = real_run
    records = read_records(root / "long")
    back = read_columns(root / "long").records()
    assert [(type(r).__name__, r.step) for r in back] == [(type(r).__name__, r.step) for r in records]
    for mine, theirs in zip(back, records):
        if isinstance(mine, BatchRecord):
            assert (mine.rotation_angles is None) == (theirs.rotation_angles is None)
            if mine.rotation_angles is not None:
                assert np.array_equal(mine.rotation_angles, theirs.rotation_angles)
        else:
            assert mine == theirs


def test_lines_from_before_driver_memory_and_with_nulls_read_as_before(tmp_path):
    record = default_shape_record(1, np.random.default_rng(0))
    old = record.to_json()
    del old["driver_memory_bytes"]  # runs logged before it was measured
    nulls = dict(record.to_json(), step=2, loss=None, rotation_angles=[[None] * 4] + old["rotation_angles"][1:])
    lines = [old, nulls, {"kind": "eval", "step": 2, "loss": None, "perplexity": None}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    columns = read_columns(tmp_path)
    assert_same_as_records(columns, read_records(tmp_path))
    assert math.isnan(columns.driver_memory_bytes[0]) and math.isnan(columns.loss[1])
    assert np.isnan(columns.rotation_angles[1, :4]).all() and not np.isnan(columns.rotation_angles[1, 4:]).any()
    assert np.isnan(columns.eval_loss).all()


def lines_of(n: int, rng: np.random.Generator) -> tuple[list[BatchRecord], bytes]:
    """n batches (standard for the first tenth), alternating line forms in blocks, evaluations and a
    mode change among them."""
    records, text = [], []
    for step in range(1, n + 1):
        mode = "standard" if step <= n // 10 else "geometric"
        if step == n // 10 + 1:
            change = ModeChange(step, "geometric", 0.001, "standard", 0.001)
            records.append(change)
            text.append(long_line(change))
        record = default_shape_record(step, rng, mode)
        records.append(record)
        text.append(batch_line(record) if (step // 997) % 2 else long_line(record))
        if step % 100 == 0:
            evaluation = EvalRecord(step, 3.0 + step * 1e-6, math.exp(3.0 + step * 1e-6))
            records.append(evaluation)
            text.append(long_line(evaluation))
    return records, ("\n".join(text) + "\n").encode()


def test_fifty_thousand_lines_in_small_chunks_cached_and_not(tmp_path, monkeypatch):
    monkeypatch.setattr(run_reader, "CHUNK_BYTES", 1 << 20)  # 40-odd chunks of the same code path
    monkeypatch.setattr(run_reader, "MIN_CACHED_CHUNK", 1 << 19)
    _, data = lines_of(50_000, np.random.default_rng(1))
    (tmp_path / "metrics.jsonl").write_bytes(data)
    expected = read_records(tmp_path)
    seen = []
    reader = MetricsReader(tmp_path)
    columns, reset = reader.read(progress=lambda done, total: seen.append((done, total)))
    assert reset and len(columns) == 50_000 and reader.cached_bytes == 0
    assert_same_as_records(columns, expected)
    assert seen[-1] == (len(data), len(data)) and [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) > 20
    assert any((tmp_path / CACHE_DIR).iterdir())

    again = MetricsReader(tmp_path)
    cached, _ = again.read()
    assert again.cached_bytes > len(data) * 0.9
    assert_same_as_records(cached, expected)
    assert [r.step for r in columns.records()] == [r.step for r in cached.records()]


def test_a_read_can_be_cancelled(tmp_path, monkeypatch):
    monkeypatch.setattr(run_reader, "CHUNK_BYTES", 1 << 16)
    _, data = lines_of(2_000, np.random.default_rng(2))
    (tmp_path / "metrics.jsonl").write_bytes(data)
    calls = []
    reader = MetricsReader(tmp_path, cache=False)
    with pytest.raises(ReadCancelled):
        reader.read(progress=lambda done, total: calls.append(done), cancel=lambda: len(calls) >= 3)
    assert len(calls) == 3 and reader.offset == 0
    assert len(reader.read()[0]) == 2_000  # and the reader starts over cleanly


def test_bad_lines_are_skipped_and_counted_and_a_torn_tail_waits(tmp_path):
    rng = np.random.default_rng(3)
    good = [default_shape_record(step, rng) for step in range(1, 5)]
    bad = [b"{not json", b"", b"[1, 2]", b"\xff\xfe", b'{"kind": "batch", "step": "three"}',
           b'{"kind": "eval", "loss": 1.0}']
    lines = [long_line(good[0]).encode(), *bad[:3], batch_line(good[1]).encode(), *bad[3:],
             long_line(good[2]).encode()]
    torn = batch_line(good[3]).encode()
    (tmp_path / "metrics.jsonl").write_bytes(b"\n".join(lines) + b"\n" + torn[:40])
    reader = MetricsReader(tmp_path)
    columns, _ = reader.read()
    assert columns.step.tolist() == [1, 2, 3] and columns.skipped_lines == len(bad) == reader.skipped_lines
    assert reader.incomplete_tail
    with open(tmp_path / "metrics.jsonl", "ab") as handle:
        handle.write(torn[40:] + b"\n")
    more, reset = reader.read()
    assert not reset and more.step.tolist() == [4] and not reader.incomplete_tail
    assert np.array_equal(more.rotation_angles[0], good[3].rotation_angles.ravel().astype(np.float32))
    assert reader.read()[0].step.tolist() == []


def test_following_a_growing_run_and_a_resume_marker(real_run, tmp_path):
    root, _ = real_run
    lines = (root / "run" / "metrics.jsonl").read_bytes().splitlines(keepends=True)
    target = tmp_path / "metrics.jsonl"
    reader = MetricsReader(tmp_path)
    assert len(reader.read()[0]) == 0  # no file yet
    target.write_bytes(b"".join(lines[:3]) + lines[3][:10])
    first, reset = reader.read()
    assert reset and reader.incomplete_tail
    with open(target, "ab") as handle:
        handle.write(lines[3][10:] + b"".join(lines[4:]))
    rest, reset = reader.read()
    assert not reset and not reader.incomplete_tail
    assert first.step.tolist() + rest.step.tolist() == list(range(1, 9))
    assert len(first.eval_step) + len(rest.eval_step) == 3

    with open(target, "ab") as handle:
        handle.write(json.dumps({"kind": "resumed", "step": 5}).encode() + b"\n")
        handle.write(batch_line(default_shape_record(6, np.random.default_rng(4))).encode() + b"\n")
    whole, reset = reader.read()
    assert reset and whole.step.tolist() == [1, 2, 3, 4, 5, 6] and whole.eval_step.tolist() == [3]
    assert [c.step for c in whole.mode_changes] == [5]  # mode changes and events are kept, as today


def test_rewinds_inside_the_file_are_applied_like_the_record_path(tmp_path):
    rng = np.random.default_rng(5)
    records = [default_shape_record(s, rng) for s in (1, 2, 3, 4)]
    text = [long_line(r) for r in records] + [json.dumps({"kind": "resumed", "step": 2})]
    text += [batch_line(default_shape_record(s, rng)) for s in (3, 4, 5)]
    text += [json.dumps({"kind": "resumed", "step": 4}), batch_line(default_shape_record(5, rng))]
    (tmp_path / "metrics.jsonl").write_text("\n".join(text) + "\n")
    columns = read_columns(tmp_path)
    assert columns.step.tolist() == [1, 2, 3, 4, 5]
    assert_same_as_records(columns, read_records(tmp_path))


def test_a_stale_cache_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setattr(run_reader, "MIN_CACHED_CHUNK", 1)
    rng = np.random.default_rng(6)
    write_run(tmp_path, [default_shape_record(s, rng) for s in range(1, 200)], compact=True)
    read_columns(tmp_path)
    assert any((tmp_path / CACHE_DIR).iterdir())
    replacement = [default_shape_record(s, rng) for s in range(1, 300)]
    write_run(tmp_path, replacement, compact=True)  # another run's records in the same place
    reader = MetricsReader(tmp_path)
    columns, _ = reader.read()
    assert reader.cached_bytes == 0
    assert_same_as_records(columns, read_records(tmp_path))


def test_the_compact_line_round_trips_to_float32_precision_and_is_under_1450_bytes():
    rng = np.random.default_rng(7)
    sizes = []
    for step in range(1, 2001):
        record = default_shape_record(step, rng, "standard" if step % 7 == 0 else "geometric")
        line = batch_line(record)
        sizes.append(len(line) + 1)
        back = record_from_json(json.loads(line))
        for f in dataclasses.fields(BatchRecord):
            mine, theirs = getattr(back, f.name), getattr(record, f.name)
            if f.name in DEVICE_FLOAT32 or f.name in ("step", "tokens_seen", "mode") or mine is None:
                assert (mine is None and theirs is None) or np.array_equal(mine, theirs), f.name
            elif f.name == "wall_time_s":
                assert abs(mine - theirs) <= 5e-7
            else:
                assert np.array_equal(np.float32(mine), np.float32(theirs), equal_nan=True), f.name
    # geometric lines carry the 8 x 8 hidden-state similarity; routed ones the 4 x 8 utilization instead
    assert max(sizes) <= 1450 and np.mean(sizes) < 1420
    assert max(len(long_line(default_shape_record(1, rng))) + 1 for _ in range(3)) > 2000


def test_nonfinite_values_stay_null_and_the_long_form_reads_back(tmp_path):
    record = dataclasses.replace(default_shape_record(3, np.random.default_rng(8)), loss=math.nan,
                                 tokens_per_s=math.inf, wall_time_s=math.nan)
    data = json.loads(batch_line(record))
    assert data["loss"] is None and data["tokens_per_s"] is None and data["wall_s"] is None
    normal = normalize_line(data)
    assert set(normal) == set(record.to_json()) and len(normal["rotation_angles"]) == 8
    back = record_from_json(data)
    assert math.isnan(back.loss) and math.isnan(back.tokens_per_s) and back.rotation_angles.shape == (8, 4)
    assert normalize_line(record.to_json()) == record.to_json()  # long lines pass unchanged


def test_pandas_reads_a_compact_log(real_run):
    pd = pytest.importorskip("pandas")
    root, logged = real_run
    frame = pd.read_json(root / "run" / "metrics.jsonl", lines=True)
    batches = frame[frame["kind"] == "batch"]
    assert batches["step"].tolist() == list(range(1, 9))
    assert np.array_equal(batches["loss"].to_numpy(np.float32),
                          np.array([r.loss for r in logged if isinstance(r, BatchRecord)], np.float32))


def test_parse_columns_of_text_in_memory():
    rng = np.random.default_rng(9)
    records = [default_shape_record(s, rng) for s in (1, 2)]
    text = ("\n".join(batch_line(r) for r in records) + "\n" + batch_line(records[0])[:30]).encode()
    columns = parse_columns(text)
    assert columns.step.tolist() == [1, 2] and columns.skipped_lines == 0


def test_the_log_caches_its_columns_as_it_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(run_segments, "SEGMENT_BYTES", 3000)  # a segment every few batches
    settings = tiny_settings(steps=12, mode="geometric_fast", eval_interval=5)
    for _ in record_run(Trainer(settings), RunLog(tmp_path / "run", settings)):
        pass
    size = (tmp_path / "run" / "metrics.jsonl").stat().st_size
    assert len(list((tmp_path / "run" / CACHE_DIR).glob("*.npz"))) >= 3
    reader = MetricsReader(tmp_path / "run")
    cached, _ = reader.read()
    assert reader.cached_bytes == size  # closing the log cached the rest
    assert_same_as_records(cached, read_records(tmp_path / "run"))
    assert cached.eval_step.tolist() == [5, 10, 12] or cached.eval_step.tolist() == [5, 10]


def test_a_standard_run_has_nan_angles_of_the_full_width(tmp_path):
    settings = tiny_settings(steps=3, mode="standard")
    for _ in record_run(Trainer(settings), RunLog(tmp_path / "run", settings)):
        pass
    columns = read_columns(tmp_path / "run")
    assert columns.rotation_angles.shape == (3, 32) and np.isnan(columns.rotation_angles).all()
    assert columns.expert_load.shape == (3, 8) and columns.ghost_activation.shape == (3, 4)
    assert read_columns(tmp_path / "nowhere").rotation_angles.shape == (0, 0)


def test_a_resumed_log_ends_a_torn_line_so_its_marker_counts(tmp_path):
    settings = tiny_settings(steps=4, mode="standard")
    for _ in record_run(Trainer(settings), RunLog(tmp_path / "run", settings)):
        pass
    with open(tmp_path / "run" / "metrics.jsonl", "a") as handle:
        handle.write('{"kind":"batch","step":5,"lo')  # the crash
    RunLog.reopen(tmp_path / "run", settings, 2).close("stopped")
    columns = read_columns(tmp_path / "run", cache=False)
    assert columns.step.tolist() == [1, 2] and columns.skipped_lines == 1
    assert [r["step"] for r in read_lines(tmp_path / "run").lines if r["kind"] == "batch"] == [1, 2]


def test_a_crashed_and_resumed_log_still_reads_from_its_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(run_segments, "SEGMENT_BYTES", 4000)
    rng = np.random.default_rng(10)
    settings = tiny_settings(steps=40)
    log = RunLog(tmp_path / "run", settings)
    for step in range(1, 31):
        log.write(default_shape_record(step, rng))
    log.close("finished")
    segments = sorted((tmp_path / "run" / CACHE_DIR).glob("*.npz"))
    segments[-1].unlink()  # what the crashed process had not cached yet
    with open(tmp_path / "run" / "metrics.jsonl", "a") as handle:
        handle.write('{"kind":"batch","step":31,"lo')
    resumed_at = (tmp_path / "run" / "metrics.jsonl").stat().st_size
    log = RunLog.reopen(tmp_path / "run", settings, 20)
    for step in range(21, 41):
        log.write(default_shape_record(step, rng))
    log.close("finished")
    reader = MetricsReader(tmp_path / "run")
    columns, _ = reader.read()
    size = (tmp_path / "run" / "metrics.jsonl").stat().st_size
    assert columns.step.tolist() == list(range(1, 41)) and columns.skipped_lines == 1
    assert reader.cached_bytes >= size - resumed_at  # the resumed log's segments, after the gap
    assert_same_as_records(columns, read_records(tmp_path / "run"))
    again = MetricsReader(tmp_path / "run")
    assert_same_as_records(again.read()[0], read_records(tmp_path / "run"))
