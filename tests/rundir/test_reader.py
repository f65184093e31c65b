"""The one reader of metrics.jsonl, as JSON objects, typed records and its last batch: the same rules
as the columns (see test_run_columns) for damaged lines, torn tails and rewinds."""

from __future__ import annotations

import json

import numpy as np

from geogui.engine.log_lines import batch_line
from geogui.engine.metrics import EvalRecord, ModeChange, Rewind, RunEvent
from geogui.rundir.reader import last_logged, read_columns, read_lines, read_records, torn_tail

from tests.rundir.test_columns import default_shape_record, long_line

DAMAGED = [b"{not json", b"[1, 2]", b"7", b'{"kind": "eval", "loss": 1.0}', b'{"kind": "resumed"}',
           b'{"kind": "batch", "step": "three"}']


def write(path, lines: list[bytes], tail: bytes = b"") -> None:
    (path / "metrics.jsonl").write_bytes(b"".join(line + b"\n" for line in lines) + tail)


def test_damaged_lines_are_counted_or_left_out_never_fatal(tmp_path):
    rng = np.random.default_rng(1)
    good = [default_shape_record(step, rng) for step in (1, 2)]
    write(tmp_path, [batch_line(good[0]).encode(), *DAMAGED, long_line(good[1]).encode()], tail=b'{"kind": "ba')
    raw = read_lines(tmp_path, rewind=False)
    assert raw.skipped_lines == 3 and raw.incomplete_tail  # not JSON objects; the torn tail waits
    assert len(raw.lines) == 2 + 3  # JSON objects, records or not, as the file has them
    stands = read_lines(tmp_path)
    assert stands.skipped_lines == 4 and len(stands.lines) == 4  # and a rewind without a step
    records = read_records(tmp_path)  # objects that are no readable record are left out
    assert [r.step for r in records] == [1, 2]
    assert read_columns(tmp_path).step.tolist() == [1, 2] and read_columns(tmp_path).skipped_lines == len(DAMAGED)
    assert torn_tail(tmp_path) and last_logged(tmp_path).step == 2


def test_a_rewind_supersedes_batches_evaluations_and_mode_changes_past_its_step(tmp_path):
    rng = np.random.default_rng(2)
    first = [default_shape_record(step, rng) for step in (1, 2, 3)]
    again = [default_shape_record(step, rng, "standard") for step in (3, 4)]
    lines = [long_line(first[0]), long_line(first[1]), json.dumps(EvalRecord(2, 1.0, 2.7).to_json()),
             json.dumps(ModeChange(3, "standard", 0.001, "geometric", 0.001).to_json()), long_line(first[2]),
             json.dumps(EvalRecord(3, 1.0, 2.7).to_json()), json.dumps(RunEvent(3, "nonfinite_loss", "nan").to_json()),
             json.dumps(Rewind(2).to_json()), batch_line(again[0]), batch_line(again[1])]
    write(tmp_path, [line.encode() for line in lines])
    records = read_records(tmp_path)
    assert [(type(r).__name__, r.step) for r in records] == [
        ("BatchRecord", 1), ("BatchRecord", 2), ("EvalRecord", 2), ("RunEvent", 3), ("BatchRecord", 3),
        ("BatchRecord", 4)]  # the event stays: it tells why the run was continued
    columns = read_columns(tmp_path)
    assert columns.step.tolist() == [1, 2, 3, 4] and columns.mode_changes == [] and columns.eval_step.tolist() == [2]
    assert columns.mode_names() == ["geometric", "geometric", "standard", "standard"]
    assert len(read_lines(tmp_path, rewind=False).lines) == len(lines)


def test_the_last_batch_is_read_from_the_end_of_the_log(tmp_path):
    assert last_logged(tmp_path) is None and not torn_tail(tmp_path)  # no log yet
    write(tmp_path, [])
    assert last_logged(tmp_path) is None and not torn_tail(tmp_path)
    record = default_shape_record(9, np.random.default_rng(3))
    event = json.dumps(RunEvent(9, "paused", "x" * 200).to_json()).encode()
    write(tmp_path, [long_line(record).encode(), batch_line(record).encode(), *[event] * 2000])  # 500 KB after it
    assert last_logged(tmp_path) == (9, record.loss)
    write(tmp_path, [batch_line(record).encode(), json.dumps(Rewind(4).to_json()).encode(), event])
    assert last_logged(tmp_path) == (4, None)
