from __future__ import annotations

from pathlib import Path

import pytest

from geogui.settings import Settings

SHARED_LAMBDA_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lambda_qa_sample.json"


def tiny_settings(**run) -> Settings:
    """A model small enough that a batch takes milliseconds on a CPU."""
    return Settings.model_validate({
        "run": {"steps": 20, "batch_size": 4, "eval_interval": 10, "eval_batches": 1, "warmup_steps": 2, **run},
        "model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "seq_len": 32, "expert_hidden": 32},
        "device": {"device": "cpu"},
    })


@pytest.fixture
def tiny() -> Settings:
    return tiny_settings()
