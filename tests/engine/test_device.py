"""Device choice: a device is used only after one tiny MoE step on it agrees with the CPU; anything
else falls back to the CPU with the reason. GEOGUI_DISABLE_MPS turns MPS off, visibly."""

from __future__ import annotations

import math

import pytest
import torch

from geogui.engine import device as device_module
from geogui.engine.device import DISABLE_MPS_VARIABLE, choose_device, free_memory_bytes


@pytest.fixture
def mps_reported(monkeypatch):
    """A machine on which torch reports MPS as available, and nobody has turned it off."""
    monkeypatch.delenv(DISABLE_MPS_VARIABLE, raising=False)
    monkeypatch.setattr(device_module, "_mps_reported", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def device_step_off_by(monkeypatch, change):
    """The probe's step on any device but the CPU returns the CPU's numbers passed through `change`."""
    real = device_module._probe_step

    def step(device, state=None):
        numbers, state = real(torch.device("cpu"), state)
        return (numbers if device.type == "cpu" else [change(value) for value in numbers]), state

    monkeypatch.setattr(device_module, "_probe_step", step)


def test_the_probe_passes_on_the_cpu():
    device_module._probe(torch.device("cpu"))
    numbers, _ = device_module._probe_step(torch.device("cpu"))
    assert len(numbers) == 2 and all(math.isfinite(value) and value > 0 for value in numbers)
    assert choose_device("cpu") == device_module.DeviceChoice(torch.device("cpu"), "cpu", None)


def test_the_probe_leaves_the_callers_random_stream_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    device_module._probe(torch.device("cpu"))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.skipif(torch.backends.mps.is_built(), reason="this torch has MPS: the real probe may pass here")
def test_a_device_that_cannot_run_the_step_falls_back_with_the_reason(mps_reported):
    choice = choose_device("auto")
    assert choice.device.type == "cpu" and choice.requested == "auto"
    assert choice.fallback_reason.startswith("mps failed (") and choice.fallback_reason.endswith("); using CPU")


def test_a_device_that_computes_a_wrong_loss_falls_back(mps_reported, monkeypatch):
    device_step_off_by(monkeypatch, lambda value: value * 1.01)
    choice = choose_device("mps")
    assert choice.device.type == "cpu"
    assert choice.fallback_reason.startswith("mps failed (a test step's loss is ")
    assert "on the CPU); using CPU" in choice.fallback_reason


def test_a_device_that_computes_a_non_finite_loss_falls_back(mps_reported, monkeypatch):
    device_step_off_by(monkeypatch, lambda value: float("nan"))
    choice = choose_device("auto")
    assert choice.device.type == "cpu"
    assert choice.fallback_reason == "mps failed (a test step's loss is nan); using CPU"


def test_a_device_within_float_rounding_of_the_cpu_is_used(mps_reported, monkeypatch):
    device_step_off_by(monkeypatch, lambda value: value * (1 + 1e-5))
    assert choose_device("auto") == device_module.DeviceChoice(torch.device("mps"), "auto", None)


def test_the_variable_turns_mps_off_and_says_so(mps_reported, monkeypatch):
    monkeypatch.setattr(device_module, "_probe", lambda device: None)
    assert choose_device("auto").device.type == "mps"
    monkeypatch.setenv(DISABLE_MPS_VARIABLE, "1")
    reason = f"mps is turned off by {DISABLE_MPS_VARIABLE}=1; using CPU"
    assert choose_device("auto") == device_module.DeviceChoice(torch.device("cpu"), "auto", reason)
    assert choose_device("mps") == device_module.DeviceChoice(torch.device("cpu"), "mps", reason)
    assert not device_module.mps_available()
    monkeypatch.setenv(DISABLE_MPS_VARIABLE, "0")
    assert choose_device("auto").device.type == "mps"
    # Where there is no MPS to turn off, auto is simply the CPU: nothing fell back.
    monkeypatch.setenv(DISABLE_MPS_VARIABLE, "1")
    monkeypatch.setattr(device_module, "_mps_reported", lambda: False)
    assert choose_device("auto") == device_module.DeviceChoice(torch.device("cpu"), "auto", None)
    assert choose_device("mps").fallback_reason == "mps is not available on this machine; using CPU"


def test_mps_free_memory_is_the_recommended_maximum_less_the_drivers(monkeypatch):
    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: 48 * 2**30)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 6 * 2**30)
    assert free_memory_bytes(torch.device("mps")) == 42 * 2**30
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 50 * 2**30)  # already swapping
    assert free_memory_bytes(torch.device("mps")) == 0
    assert free_memory_bytes(torch.device("cpu")) is None


def test_a_many_line_failure_is_reported_in_one_line(mps_reported, monkeypatch):
    def broken(device):
        raise RuntimeError("MPS backend out of order\nsee the log for details")

    monkeypatch.setattr(device_module, "_probe", broken)
    assert choose_device("auto").fallback_reason == "mps failed (MPS backend out of order); using CPU"
