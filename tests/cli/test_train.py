import json
import math
import subprocess
import sys

import pytest

from geogui.cli.train import main
from geogui.rundir.runlog import read_metrics

TINY = {"run": {"batch_size": 2, "eval_interval": 5, "eval_batches": 1},
        "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "seq_len": 16, "expert_hidden": 16},
        "device": {"device": "cpu"}}


@pytest.fixture
def settings_file(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(TINY))
    return path


def test_headless_run_writes_meta_and_metrics(tmp_path, settings_file, capsys):
    out = tmp_path / "run"
    code = main(["--settings", str(settings_file), "--mode", "geometric", "--penalty-weight", "0.01",
                 "--steps", "6", "--out", str(out), "--seed", "3"])
    assert code == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["device"] == "cpu" and meta["steps_done"] == 6
    assert meta["settings"]["run"]["mode"] == "geometric" and meta["settings"]["run"]["seed"] == 3
    assert meta["settings"]["model"]["d_model"] == 16  # the file's values, under the flags
    assert meta["versions"]["torch"] and meta["started_at"] and meta["ended_at"]
    records = [r for r in read_metrics(out) if r["kind"] == "batch"]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    for record in records:
        assert record["mode"] == "geometric" and record["penalty_weight"] == 0.01
        assert record["batch_time_s"] > 0 and math.isfinite(record["loss"])
        assert len(record["rotation_angles"]) == 8 and len(record["rotation_angles"][0]) == 4
        assert record["penalty"] == pytest.approx(
            0.01 * sum(a * a for row in record["rotation_angles"] for a in row) / 32, rel=1e-4)
    assert any(r["kind"] == "eval" for r in read_metrics(out))
    assert "finished" in capsys.readouterr().err


def test_standard_mode_writes_null_angles(tmp_path, settings_file):
    out = tmp_path / "run"
    assert main(["--settings", str(settings_file), "--mode", "standard", "--steps", "2", "--out", str(out)]) == 0
    assert all(r["rotation_angles"] is None and r["penalty"] == 0 for r in read_metrics(out) if r["kind"] == "batch")


@pytest.mark.parametrize("args, message", [
    (["--penalty-weight", "nan"], "run.penalty_weight"),
    (["--penalty-weight", "-1"], "run.penalty_weight: Input should be greater than or equal to 0"),
    (["--steps", "0"], "run.steps"),
    (["--batch-size", "0"], "run.batch_size"),
    (["--data", "/nonexistent/corpus.txt"], "data file not found"),
])
def test_bad_flags_are_refused_with_the_field_named(args, message, capsys, tmp_path):
    assert main(args + ["--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("content, message", [
    ('{"run": {"batch_size": "many"}}', "run.batch_size"),
    ('{"run": {"penalty_weight": NaN}}', "run.penalty_weight"),
    ('{"run": {"learning_rat": 0.1}}', "run.learning_rat: unknown setting"),
    ('{"run": {"steps": 10', "not valid JSON"),
    ('[1, 2]', "expected a JSON object"),
])
def test_bad_settings_files_are_refused(content, message, capsys, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["--settings", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err and "Traceback" not in err


def test_bad_data_file_is_one_line_naming_the_file(tmp_path, settings_file):
    data = tmp_path / "broken.json"
    data.write_text('[{"question": "x", ')
    result = subprocess.run(
        [sys.executable, "-m", "geogui.cli.train", "--settings", str(settings_file), "--data", str(data),
         "--steps", "2", "--out", str(tmp_path / "r"), "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "broken.json" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("geogui-train: error:")
    assert not (tmp_path / "r").exists()
