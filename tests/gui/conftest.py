from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from geogui.engine.metrics import BatchRecord
from geogui.settings import Settings

from tests.conftest import tiny_settings as _tiny_settings

# The window's tests train the shared tiny model for longer, so that a run lasts while a test acts.
WINDOW_STEPS = 400


def tiny_settings(**run) -> Settings:
    return _tiny_settings(**{"steps": WINDOW_STEPS, **run})


TINY = tiny_settings().model_dump(mode="json", include={"run", "model", "device", "sampling"})


@pytest.fixture
def tiny() -> Settings:
    return tiny_settings()


@pytest.fixture
def tiny_file(tmp_path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


def synthetic_record(step: int, mode: str = "geometric_fast", presentations: int = 8, angles: int = 4,
                     ghosts: int = 4, rng: np.random.Generator | None = None) -> BatchRecord:
    """A plausible BatchRecord without a trainer, for driving the plots directly."""
    rng = rng or np.random.default_rng(step)
    return BatchRecord(
        step=step, epoch=step / 1000, mode=mode, penalty_weight=0.001, batch_time_s=0.01 + 0.002 * rng.random(),
        data_time_s=1e-4, loss=5.0 / np.sqrt(step) + 0.1 * rng.random(), task_loss=1.0, aux_loss=0.01,
        penalty=0.0, orthogonality=0.0, specialization=0.0, lr_model=3e-3, lr_rotation=1e-3,
        rotation_angles=None if mode == "standard" else rng.normal(0, 0.1, (presentations, angles)),
        expert_load=rng.dirichlet(np.ones(presentations)), ghost_activation=rng.random(ghosts), saturation=0.0,
        tokens_per_s=1e4, tokens_seen=step * 128, memory_bytes=2e8, wall_time_s=step * 0.01,
    )


@pytest.fixture
def window(qtbot):
    """A window whose run would train for a long time unless stopped, polling a followed run every 20 ms
    (test modules that need another window define their own `window`)."""
    from geogui.gui.main_window import MainWindow

    window = MainWindow(tiny_settings(steps=100_000), persist=False, follow_ms=20)
    qtbot.addWidget(window)
    window.show()
    return window


def only_run_dir() -> Path:
    from geogui import paths

    runs = [path for path in paths.runs_dir().iterdir() if path.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def run_meta(run_dir: Path) -> dict:
    return json.loads((run_dir / "meta.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Train the tiny test models on one CPU thread.

    On a shared 2-core CI machine, torch's default of one intra-op thread per core stalls at every
    barrier whenever another process takes a core: a 5 ms tiny-model batch was measured at 750 ms.
    One thread keeps these tests at milliseconds per batch whatever the machine's load.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
