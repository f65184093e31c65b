"""The Samples tab's table and detail pane, fed SampleRecords directly (no trainer)."""

from __future__ import annotations

import json
import re

from geogui.engine.samples import SampleRecord
from geogui.engine.trainer import Trainer
from geogui.gui.plots.style import curve_color
from geogui.gui.samples.detail import GEOMETRIC_NOTE
from geogui.gui.samples.tab import SamplesTab
from geogui.gui.samples.table_model import COLUMNS
from geogui.rundir.meta import read_meta
from geogui.rundir.recorder import record_run
from geogui.rundir.runlog import RunLog
from tests.conftest import tiny_settings


def record(step: int, right: bool | None = None, text: str = "x y\nA: x\n\n", mode: str = "standard",
           experts: tuple[tuple[int, ...], ...] = ()) -> SampleRecord:
    return SampleRecord(step=step, mode=mode, prompt="Q: (\\x. x) y\nReasoning:\n", text=text, temperature=0.8,
                        top_k=0, seconds=0.01, right=right, expected="y" if right is not None else None,
                        experts=experts)


def cell(tab: SamplesTab, row: int, column: str) -> str:
    return tab.model.data(tab.model.index(row, COLUMNS.index(column)))


def test_add_samples_shows_a_row_each_with_right_wrong_or_blank(qtbot):
    tab = SamplesTab(lambda: None)
    qtbot.addWidget(tab)
    tab.add_samples([record(10, True), record(20, False), record(30, None, mode="geometric")])
    assert tab.model.rowCount() == 3
    assert [cell(tab, row, "Answer") for row in range(3)] == ["✓", "✗", ""]
    assert [cell(tab, row, "Step") for row in range(3)] == ["10", "20", "30"]
    assert cell(tab, 2, "Mode") == "Geometric"
    assert cell(tab, 0, "Prompt") == "Q: (\\x. x) y⏎Reasoning:⏎"  # one line in the table
    assert tab.detail.record == tab.model.records[-1]  # the newest is shown whole below


def test_the_detail_pane_colours_each_generated_byte_by_its_expert_in_the_chosen_layer(qtbot):
    tab = SamplesTab(lambda: None)
    qtbot.addWidget(tab)
    tab.detail.set_expert_names(["E0", "E1", "E2", "E3"])
    text = "a<b\n"
    experts = ((0, 1, 2, 3), (3, 2, 0, 1))
    tab.add_samples([record(5, text=text, experts=experts)])
    detail = tab.detail
    detail.layer.setCurrentIndex(detail.layer.findData(1))  # layer 2
    spans = re.findall(r'<span style="color:(#[0-9a-f]{6})">(.*?)</span>', detail.html)
    prompt, *generated = spans
    assert [color for color, _ in generated] == [curve_color(e, 4).name() for e in experts[1]]
    assert [char for _, char in generated] == ["a", "&lt;", "b", "<br>"]  # escaped, one per byte
    assert "E3" in detail.legend.text()


def test_a_geometric_sample_says_it_routes_nothing(qtbot):
    tab = SamplesTab(lambda: None)
    qtbot.addWidget(tab)
    tab.add_samples([record(5, text="ab", mode="geometric", experts=((-1, -1),))])
    assert tab.detail.legend.text() == GEOMETRIC_NOTE
    assert 'style="color:#' not in tab.detail.html.split("</span>", 1)[1]  # only the prompt is tinted


def test_an_opened_run_shows_the_samples_it_logged_and_skips_broken_lines(qtbot, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    lines = [json.dumps(record(100, True).to_json()), "{not json", json.dumps(record(200).to_json())[:20]]
    (run / "samples.jsonl").write_text("\n".join(lines) + "\n")
    tab = SamplesTab(lambda: None)
    qtbot.addWidget(tab)
    tab.show_run(run)
    assert [r.step for r in tab.model.records] == [100]
    assert tab.form.prompt.toPlainText() == record(100).prompt  # a held-out question to start from
    tab.show_run(None)
    assert tab.model.rowCount() == 0


def test_a_replaced_byte_keeps_the_colours_of_the_bytes_after_it(qtbot):
    tab = SamplesTab(lambda: None)
    qtbot.addWidget(tab)
    tab.add_samples([record(5, text="a\ufffdb", experts=((0, 1, 2),))])  # a lone invalid byte between two
    tab.detail.layer.setCurrentIndex(tab.detail.layer.findData(0))
    colors = re.findall(r'<span style="color:(#[0-9a-f]{6})">', tab.detail.html)[1:]
    assert colors == [curve_color(e, 3).name() for e in (0, 1, 2)]
    assert "3 bytes" in tab.detail.summary.text()


def test_a_run_without_samples_offers_its_first_held_out_question_as_the_prompt(qtbot, tmp_path):
    settings = tiny_settings(steps=2)  # samples and accuracy off: nothing in samples.jsonl
    log = RunLog(tmp_path / "run", settings)
    list(record_run(Trainer(settings), log))
    meta = read_meta(log.path)
    assert meta.heldout_prompt.startswith("Q: ") and meta.heldout_prompt.endswith("Reasoning:\n")
    assert meta.heldout_answer
    tab = SamplesTab(lambda: None)
    qtbot.addWidget(tab)
    tab.show_run(log.path)
    assert tab.model.rowCount() == 0
    assert tab.form.prompt.toPlainText() == meta.heldout_prompt
    request = tab.form.request()
    assert request.prompt == meta.heldout_prompt and request.expected == meta.heldout_answer  # checked when answered
