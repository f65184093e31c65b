"""Fault suite: sizes that would not fit in memory are refused before training, with the estimate,
and the estimate is checked against what autograd really keeps for the backward pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from geogui.cli.train import main
from geogui.engine import trainer as trainer_module
from geogui.engine.data import get_batch
from geogui.engine.memory_estimate import (
    MemoryEstimateError,
    activation_floats,
    check_fits,
    estimate,
    parameter_count,
)
from geogui.engine.modes import LossWeights, compute_terms
from geogui.engine.trainer import Trainer, build_state
from geogui.settings import Mode, Settings

from tests.conftest import tiny_settings

HUGE = {"run": {"batch_size": 4096}, "model": {"seq_len": 16384, "d_model": 1024, "n_heads": 8}}


def saved_activation_bytes(settings: Settings, mode: Mode) -> int:
    """Bytes of the tensors autograd saves for backward in one step (parameters excluded), every
    ghost awake: the most a step of these settings can hold."""
    state = build_state(settings, torch.device("cpu"))
    for layer in state.model.moe_layers:
        layer.set_extra_state({"ghost_activation": np.ones(layer.num_ghost), "saturation_ema": 0.0,
                               "saturated_steps": 0})
    weights = {p.untyped_storage().data_ptr() for p in [*state.model.parameters(), *state.rotator.parameters()]}
    saved: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    tokens = torch.randint(0, 256, (20_000,), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    x, y = get_batch(tokens, settings.run.batch_size, settings.model.seq_len, torch.Generator().manual_seed(1))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        compute_terms(mode, state.model, state.rotator, x, y, LossWeights(0.001, 0.5, 0.3, 0.01))
    return sum(saved.values())


@pytest.mark.parametrize("model", [
    {"d_model": 64, "n_layers": 2, "n_heads": 2, "seq_len": 64, "expert_hidden": 128},
    {"d_model": 32, "n_layers": 1, "n_heads": 4, "seq_len": 48, "expert_hidden": 256, "num_ghost_experts": 0,
     "top_k": 1},
])
@pytest.mark.parametrize("mode", [Mode.STANDARD, Mode.GEOMETRIC])
def test_the_estimate_matches_the_model_and_what_autograd_keeps(model, mode):
    settings = Settings.model_validate({"run": {"batch_size": 8}, "model": model})
    state = build_state(settings, torch.device("cpu"))
    assert parameter_count(settings) == state.model.num_parameters() + state.rotator.theta.numel()
    real = saved_activation_bytes(settings, mode)
    estimated = activation_floats(settings, mode) * 4
    assert 0.95 <= estimated / real <= 1.25, (estimated, real)


def test_a_size_that_cannot_fit_is_refused_with_the_estimate():
    settings = Settings.model_validate(HUGE)
    problem = check_fits(settings, available_bytes=16 * 2**30)
    assert problem.startswith("would not fit in memory: a training step needs about ")
    assert "GiB" in problem and "16.00 GiB is available" in problem and "Lower the batch size" in problem
    assert check_fits(Settings(), available_bytes=8 * 2**30) is None
    # The default checks the mode the run may switch to that needs most: geometric keeps P passes.
    assert estimate(Settings()).activation_bytes == activation_floats(Settings(), Mode.GEOMETRIC) * 4
    assert check_fits(Settings()) is None  # the defaults fit on the machine running the tests


def test_geogui_train_refuses_it_before_creating_the_run(tmp_path, capsys):
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(HUGE))
    out = tmp_path / "run"
    assert main(["--settings", str(path), "--out", str(out), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("geogui-train: error: would not fit in memory") and error.count("\n") == 1
    assert not out.exists()


def test_the_trainer_checks_a_gpu_s_own_free_memory(monkeypatch):
    monkeypatch.setattr(trainer_module, "free_memory_bytes", lambda device: 64 * 2**20)  # a GPU with 64 MiB free
    with pytest.raises(MemoryEstimateError, match="only 64 MiB is available"):
        next(Trainer(tiny_settings()).run())
    monkeypatch.setattr(trainer_module, "free_memory_bytes", lambda device: 8 * 2**30)
    assert type(next(Trainer(tiny_settings()).run())).__name__ == "RunStarted"
