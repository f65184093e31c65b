"""Security basics: settings, data and checkpoints are data, never code; no network at run time."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
import torch

import geogui
from geogui.cli.train import main
from geogui.engine.checkpoint import CheckpointError, check_checkpoint
from geogui.settings import ModelSettings

PACKAGE = Path(geogui.__file__).parent


class Payload:
    """What a hostile checkpoint would carry: unpickling it runs a call."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.mkdir, (self.marker,))


def test_a_checkpoint_that_carries_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "latest.pt"
    torch.save({"format_version": 1, "step": 1, "model_settings": {}, "surprise": Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        check_checkpoint(path, ModelSettings())
    assert not marker.exists()


def test_the_package_never_evaluates_or_unpickles_what_it_reads():
    # Builtin eval/exec (not Qt's QApplication.exec()), unpickling, unsafe torch.load, YAML, shells.
    risky = re.compile(r"(?<![.\w])(eval|exec)\(|pickle\.loads?\(|weights_only\s*=\s*False|yaml\.load\(|shell\s*=\s*True")
    offenders = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
                 for path in PACKAGE.rglob("*.py")
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                 if risky.search(line.split("#")[0])]  # code, not comments
    assert offenders == []


def test_settings_text_is_never_executed(tmp_path, capsys):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"run": {"steps": "__import__('os').mkdir('pwned')"}}))
    assert main(["--settings", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "run.steps" in capsys.readouterr().err
    assert not Path("pwned").exists()


def test_training_opens_no_network_connection(tmp_path, monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access at run time")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"run": {"steps": 3, "batch_size": 2, "eval_interval": 2},
                                    "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "seq_len": 16,
                                              "expert_hidden": 16}, "device": {"device": "cpu"}}))
    assert main(["--settings", str(settings), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert main(["--resume", str(tmp_path / "run"), "--steps", "1", "--quiet"]) == 0
    assert attempts == []
