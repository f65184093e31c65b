"""geogui-sample on a run trained for a few steps: a sample, the accuracy line, clear refusals."""

import json

import pytest

from geogui.cli.sample import main as sample
from geogui.cli.train import main as train

TINY = {"run": {"batch_size": 2, "eval_interval": 5, "eval_batches": 1},
        "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "seq_len": 16, "expert_hidden": 16},
        "device": {"device": "cpu"}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample")
    (folder / "settings.json").write_text(json.dumps(TINY))
    assert train(["--settings", str(folder / "settings.json"), "--steps", "3", "--out", str(folder / "run"),
                  "--quiet"]) == 0
    return folder / "run"


def test_prints_the_prompt_and_a_reproducible_sample(run_dir, capsys):
    assert sample([str(run_dir), "--prompt", "Q: a", "--max-bytes", "20", "--seed", "4"]) == 0
    first = capsys.readouterr().out
    assert "step 3, geometric_fast" in first and "--- prompt ---\nQ: a\n" in first and "--- sample (" in first
    assert sample([str(run_dir), "--prompt", "Q: a", "--max-bytes", "20", "--seed", "4"]) == 0
    assert capsys.readouterr().out.split("bytes, ")[0] == first.split("bytes, ")[0]


def test_the_default_prompt_is_a_held_out_question_and_accuracy_is_printed(run_dir, capsys):
    code = sample([str(run_dir), "--max-bytes", "8", "--temperature", "0", "--mode", "geometric",
                   "--checkpoint", "previous" if (run_dir / "checkpoints" / "previous.pt").exists() else "latest",
                   "--accuracy", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "geometric," in out
    assert "--- prompt ---\nQ: " in out and "\nReasoning:\n" in out
    assert "answer accuracy: 0/2 (0.0%) on held-out questions" in out


def test_plain_text_data_has_no_questions(tmp_path, capsys):
    text = tmp_path / "plain.txt"
    text.write_text("a plain text corpus with no records at all, repeated. " * 40)
    (tmp_path / "settings.json").write_text(json.dumps(TINY))
    assert train(["--settings", str(tmp_path / "settings.json"), "--data", str(text), "--steps", "1",
                  "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert sample([str(tmp_path / "run"), "--max-bytes", "4", "--accuracy"]) == 0
    assert "the data has no question/answer records" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--temperature", "9"], "temperature"),
    (["--checkpoint", "previous"], "no previous checkpoint"),
])
def test_bad_input_exits_2_with_the_reason(run_dir, args, message, capsys, tmp_path):
    if "previous" in args and (run_dir / "checkpoints" / "previous.pt").exists():
        pytest.skip("this run kept a previous checkpoint")
    assert sample([str(run_dir), *args]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_run_exits_2(tmp_path, capsys):
    assert sample([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("geogui-sample: error:") and "meta.json: missing" in err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "meta.json").write_text(json.dumps({"settings": TINY}))
    assert sample([str(tmp_path / "empty")]) == 2
    assert "no latest checkpoint" in capsys.readouterr().err
