"""The comparison summary from hand-made metrics: speed, and the picks at equal steps and equal wall time."""

from __future__ import annotations

import json

import pytest

from geogui.engine.samples import AccuracyRecord

from geogui.rundir.comparison_summary import SUMMARY_JSON, SUMMARY_MD, summarize_comparison, write_summary


def _run(root, mode, batches, evals, accuracy=None):
    """A run directory: `batches` as (step, batch seconds, tokens/s, wall seconds), `evals` as {step: loss}."""
    path = root / f"g-{mode}"
    path.mkdir()
    (path / "meta.json").write_text(json.dumps({"name": path.name, "status": "finished",
                                                "settings": {"run": {"mode": mode}}}))
    lines = []
    for step, batch_s, tokens, wall in batches:
        lines.append({"kind": "batch", "step": step, "batch_time_s": batch_s, "tokens_per_s": tokens,
                      "wall_time_s": wall})
        if step in evals:
            lines.append({"kind": "eval", "step": step, "loss": evals[step], "perplexity": 1.0})
        if accuracy and step in accuracy:
            # An accuracy line as the trainer logs it (`AccuracyRecord`): right of asked.
            lines.append(AccuracyRecord(step=step, mode=mode, right=round(accuracy[step] * 1000), asked=1000,
                                        unparsed=0, seconds=1.0).to_json())
    (path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture
def runs(tmp_path):
    # standard: fast (1 s a step), evaluated every 2 steps, 6 steps
    standard = _run(tmp_path, "standard", [(s, 0.9, 100.0, 1.0 * s) for s in range(1, 7)],
                    {2: 3.0, 4: 2.5, 6: 2.0})
    # geometric_fast: 2 s a step, 4 steps; the first step slow (warm-up)
    fast = _run(tmp_path, "geometric_fast", [(1, 5.0, 10.0, 2.0), (2, 1.8, 50.0, 4.0), (3, 2.0, 100.0, 6.0),
                                             (4, 2.2, 100.0, 8.0)], {2: 2.8, 4: 2.2}, accuracy={4: 0.25})
    # geometric: 3 s a step, 3 steps, evaluated at 2 only
    geometric = _run(tmp_path, "geometric", [(s, 3.0, 30.0, 3.0 * s) for s in range(1, 4)], {2: 2.9})
    return [standard, fast, geometric]


def test_speed_and_the_equal_steps_and_equal_time_picks(runs):
    summary = summarize_comparison(runs)
    standard, fast, geometric = summary.modes
    assert [m.mode for m in summary.modes] == ["standard", "geometric_fast", "geometric"]
    assert [m.steps for m in summary.modes] == [6, 4, 3]
    # speed leaves the first step out: (1.8 + 2.0 + 2.2) / 3; tokens/s as total tokens over total time
    assert fast.ms_per_step == pytest.approx(2000.0) and fast.tokens_per_s == pytest.approx(75.0)
    assert standard.ms_per_step == pytest.approx(900.0) and geometric.tokens_per_s == pytest.approx(30.0)
    # equal steps: the last step every run was evaluated at is 2
    assert summary.equal_step == 2
    assert [m.eval_loss_at_equal_steps for m in summary.modes] == [3.0, 2.8, 2.9]
    # equal wall time: the least of the last wall times (6, 8, 9) is 6 s; each run's last eval after a
    # step begun by then (geometric_fast's step 4 began at 6 s; geometric's step 3 has no eval)
    assert summary.equal_wall_s == 6.0
    assert [m.eval_step_at_equal_time for m in summary.modes] == [6, 4, 2]
    assert [m.eval_loss_at_equal_time for m in summary.modes] == [2.0, 2.2, 2.9]
    # accuracy only where a record carries it, and only at or before the step compared
    assert fast.accuracy_at_equal_steps is None and fast.accuracy_at_equal_time == 0.25
    assert all(m.accuracy_at_equal_steps is None for m in summary.modes)


def test_accuracy_shows_where_it_was_recorded(tmp_path):
    one = _run(tmp_path, "standard", [(1, 1.0, 1.0, 1.0), (2, 1.0, 1.0, 2.0)], {2: 2.0}, accuracy={2: 0.5})
    two = _run(tmp_path, "geometric", [(1, 1.0, 1.0, 1.0), (2, 1.0, 1.0, 2.0)], {2: 2.5})
    summary = summarize_comparison([one, two])
    assert summary.modes[0].accuracy_at_equal_steps == 0.5 and summary.modes[0].accuracy_at_equal_time == 0.5
    rows = summary.rows()
    assert rows[0][5] == "50.0%" and rows[1][5] == "–"


def test_the_table_and_its_files(runs, tmp_path):
    summary = summarize_comparison(runs)
    markdown = summary.to_markdown()
    lines = markdown.splitlines()
    assert lines[0].startswith("| mode | steps | ms/step | tokens/s | eval loss @ step 2 |")
    assert "eval loss @ 6.0 s" in lines[0] and lines[1].startswith("| --- |")
    assert lines[2].split(" | ")[:5] == ["| standard", "6", "900.0", "100", "3.0000"]
    assert "2.2000 (step 4)" in lines[3]
    written = write_summary(tmp_path / "g", summary, title="Mode comparison g")
    assert written == tmp_path / "g" / SUMMARY_MD and "# Mode comparison g" in written.read_text()
    data = json.loads((tmp_path / "g" / SUMMARY_JSON).read_text())
    assert data["equal_step"] == 2 and data["modes"][1]["eval_loss_at_equal_time"] == 2.2
