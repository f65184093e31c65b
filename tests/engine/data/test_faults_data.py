"""Fault suite: bad data files, through the path a user takes (`geogui-train --data FILE`). Each gets
one line naming the file, nothing crashes, and no run directory is left behind."""

from __future__ import annotations

import json
import os

import pytest

from geogui.cli.train import main
from geogui.engine.data import files as data_files
from geogui.engine.data import DataError, read_training_text
from geogui.settings import DataSettings

SMALL = {"run": {"steps": 2, "batch_size": 2}, "model": {"d_model": 16, "n_layers": 1, "n_heads": 2,
                                                          "seq_len": 64, "expert_hidden": 16},
         "device": {"device": "cpu"}}
RECORD = {"question": "(λx.x) y", "reasoning": "β-reduce", "answer": "y"}


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("weights.bin", bytes(range(256)) * 8, "binary file"),
    ("empty.txt", b"", "file is empty"),
    ("notes.txt", "λ-calculus notes, long enough to train on. ".encode("utf-16") * 40, "UTF-16"),
    ("broken.json", b'[{"question": "q", "reasoning": "r", "answer": ', "malformed JSON at line 1"),
    ("broken.jsonl", (json.dumps(RECORD) + "\n{not json\n").encode(), "malformed JSONL at line 2"),
    ("fields.jsonl", b'{"question": "q"}\n{"answer": "a"}\n', "missing: 'question', 'reasoning', 'answer'"),
    ("short.txt", b"too short for one window", "too short: 24 bytes"),
    ("latin1.txt", "caf\xe9 cr\xe8me br\xfbl\xe9e ".encode("latin-1") * 40, "not UTF-8"),
])
def test_a_bad_data_file_is_one_line_naming_it(tmp_path, capsys, name, content, expected):
    data = tmp_path / name
    data.write_bytes(content)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(SMALL))
    out = tmp_path / "run"
    assert main(["--settings", str(settings), "--data", str(data), "--out", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"geogui-train: error: {data}") and expected in error, error
    assert error.count("\n") == 1 and "Traceback" not in error
    assert not out.exists()


def test_a_file_too_large_to_read_is_refused_before_reading(tmp_path, monkeypatch):
    data = tmp_path / "big.txt"
    data.write_text("x" * 5000)
    monkeypatch.setattr(data_files, "MAX_DATA_BYTES", 4096)
    monkeypatch.setattr(type(data), "read_bytes", lambda self: pytest.fail("the file was read"))
    with pytest.raises(DataError, match=r"big\.txt: file is 0\.0 GiB; training data is read into memory whole"):
        read_training_text(data)


def test_data_paths_are_resolved_and_must_be_regular_files(tmp_path, monkeypatch):
    (tmp_path / "corpus").mkdir()
    real = tmp_path / "corpus" / "data.txt"
    real.write_text("text")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    monkeypatch.chdir(tmp_path)
    assert DataSettings(path="corpus/../link.txt").path == real  # relative, .., symlink: the real file
    with pytest.raises(ValueError, match="data file is not a regular file"):
        DataSettings(path=str(tmp_path / "corpus"))
    if os.path.exists("/dev/zero"):
        with pytest.raises(ValueError, match="data file is not a regular file: /dev/zero"):
            DataSettings(path="/dev/zero")  # endless: it would never finish reading
