"""benchmarks/device_check.py, the script Mac and CUDA users run to prove their machine: it must keep
working, and a failing check must fail the run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from geogui.engine.device import DeviceChoice
from geogui.settings import Mode

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "device_check.py"
CHECK_NAMES = ["device", "non-blocking copy", "geometric = loop", "device = CPU", "corpus in QThread", "trainer"]


@pytest.fixture
def device_check(monkeypatch):
    spec = importlib.util.spec_from_file_location("device_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "device_check", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def tiny_context(device_check, choice: DeviceChoice | None = None):
    size = device_check.SIZES["tiny"]
    return device_check.Context(device_check.make_settings("cpu", size), size,
                                choice or device_check.choose_device("cpu"))


def test_every_check_passes_on_the_cpu_with_a_tiny_model(tmp_path):
    out = tmp_path / "out.json"
    child = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--json", str(out)],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert child.returncode == 0, child.stdout + child.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert [check["name"] for check in report["checks"]] == CHECK_NAMES
    assert all(check["passed"] for check in report["checks"]), report["checks"]
    assert report["passed"] is True
    assert report["machine"]["device"] == "cpu" and report["machine"]["torch"] == torch.__version__
    assert set(report["timings"]) == {mode.value for mode in Mode}
    for mode, timing in report["timings"].items():
        assert len(timing["step_times_s"]) == 5 and all(t > 0 for t in timing["step_times_s"]), mode
        assert timing["first_step_s"] > 0 and timing["median_step_s"] > 0, mode
        assert timing["memory_bytes"] > 0 and timing["problems"] == [], mode
    table = child.stdout[child.stdout.index("check "):]
    for name in CHECK_NAMES:
        assert any(line.startswith(name) and " pass " in line for line in table.splitlines()), name
    assert "all checks passed" in child.stdout


def test_a_device_fallback_fails_the_run_with_its_reason(device_check, monkeypatch, tmp_path, capsys):
    reason = "mps is not available on this machine; using CPU"
    monkeypatch.setattr(device_check, "choose_device",
                        lambda requested: DeviceChoice(torch.device("cpu"), requested, reason))
    monkeypatch.setattr(device_check, "CHECKS", device_check.CHECKS[:2])  # the device check and one that passes
    out = tmp_path / "out.json"
    assert device_check.main(["--tiny", "--json", str(out)]) == 1
    checks = {check["name"]: check for check in json.loads(out.read_text(encoding="utf-8"))["checks"]}
    assert not checks["device"]["passed"] and reason in checks["device"]["detail"]
    assert checks["non-blocking copy"]["passed"]
    assert "FAILED: device" in capsys.readouterr().out


def test_a_batched_geometric_step_off_by_a_little_fails_the_equivalence(device_check, monkeypatch):
    ctx = tiny_context(device_check)
    assert device_check.check_geometric_equivalence(ctx).passed
    original = device_check.geometric_terms

    def slightly_wrong(*args, **kwargs):
        terms = original(*args, **kwargs)
        terms.loss = terms.loss * 1.001
        return terms

    monkeypatch.setattr(device_check, "geometric_terms", slightly_wrong)
    result = device_check.check_geometric_equivalence(ctx)
    assert not result.passed and "loss" in result.detail


def test_a_check_that_raises_is_a_failure_not_a_crash(device_check):
    def broken(ctx):
        raise NotImplementedError("aten::something is not implemented for MPS")

    result = device_check.run_check("broken", broken, tiny_context(device_check))
    assert not result.passed and result.name == "broken"
    assert "NotImplementedError: aten::something" in result.detail
