"""geogui-train under torchrun on a Mac: torch.distributed has no MPS backend, so `auto` trains on the
CPU and says so once, while an explicit `--device mps` is refused. No process group is started here."""

from __future__ import annotations

import pytest
import torch

from geogui.cli import torchrun as train_replicas
from geogui.cli.terminal import InputError
from geogui.engine import device as device_module
from geogui.engine.distributed import ddp as distributed_module

from tests.conftest import tiny_settings


class FakeReplicas:
    def __init__(self, device_type: str, timeout_s: float) -> None:
        self.device_type = device_type


@pytest.fixture
def a_mac(monkeypatch):
    monkeypatch.setattr(device_module, "_mps_available", lambda: True)
    monkeypatch.setattr(device_module, "_probe", lambda device: None)  # MPS works here
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(distributed_module, "DistributedReplicas", FakeReplicas)


def on(device: str):
    settings = tiny_settings()
    return settings.model_copy(update={"device": settings.device.model_copy(update={"device": device})})


def test_auto_trains_on_the_cpu_and_says_so_on_rank_0(a_mac, monkeypatch, capsys):
    monkeypatch.setenv("RANK", "0")
    replicas, settings = train_replicas._start(on("auto"), 30)
    assert replicas.device_type == "cpu" and settings.device.device == "cpu"  # the trainer's choice too
    assert settings.model == tiny_settings().model
    assert capsys.readouterr().err == ("torch.distributed has no MPS backend: training on the CPU "
                                       "(pass --device cpu to silence this)\n")
    monkeypatch.setenv("RANK", "1")
    train_replicas._start(on("auto"), 30)
    assert capsys.readouterr().err == ""  # one line per run, not one per rank


def test_explicit_mps_is_refused_and_cpu_is_silent(a_mac, capsys):
    with pytest.raises(InputError, match="torch.distributed has no MPS backend"):
        train_replicas._start(on("mps"), 30)
    replicas, settings = train_replicas._start(on("cpu"), 30)
    assert replicas.device_type == "cpu" and settings.device.device == "cpu"
    assert capsys.readouterr().err == ""
