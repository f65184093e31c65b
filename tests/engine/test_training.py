"""Short real training runs: the loss must clearly fall, on the embedded corpus and on a user file."""

import json

import numpy as np
import pytest

from geogui.engine.metrics import BatchRecord, EvalRecord
from geogui.engine.trainer import Trainer
from geogui.settings import Settings

from tests.conftest import SHARED_LAMBDA_FILE


def losses(settings: Settings):
    events = list(Trainer(settings).run())
    train = np.array([e.task_loss for e in events if isinstance(e, BatchRecord)])
    evals = [e.loss for e in events if isinstance(e, EvalRecord)]
    return train, evals


def small(mode: str, steps: int, data=None) -> Settings:
    return Settings.model_validate({
        "run": {"mode": mode, "steps": steps, "batch_size": 8, "eval_interval": steps, "eval_batches": 2},
        "model": {"d_model": 64, "n_layers": 2, "n_heads": 2, "seq_len": 64, "expert_hidden": 128},
        "data": {"path": data},
        "device": {"device": "cpu"},
    })


@pytest.mark.slow
def test_default_settings_train_visibly_in_200_steps():
    settings = Settings.model_validate({"run": {"steps": 200, "eval_interval": 200}, "device": {"device": "cpu"}})
    train, evals = losses(settings)
    assert train[:5].mean() > 5.0  # bytes start near ln(256) = 5.5
    assert train[-20:].mean() < train[:5].mean() - 2.5
    assert evals[-1] < 3.0


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["standard", "geometric_fast", "geometric"])
def test_each_mode_learns_the_embedded_corpus(mode):
    train, evals = losses(small(mode, 120))
    assert train[-10:].mean() < train[:5].mean() - 1.5, mode
    assert evals[-1] < train[:5].mean() - 1.5


@pytest.mark.slow
def test_learns_the_users_lambda_file():
    if not SHARED_LAMBDA_FILE.is_file():
        pytest.skip("shared lambda sample not present")
    assert json.loads(SHARED_LAMBDA_FILE.read_text(encoding="utf-8"))[0]["question"]
    train, evals = losses(small("geometric_fast", 120, str(SHARED_LAMBDA_FILE)))
    assert train[-10:].mean() < train[:5].mean() - 1.5
