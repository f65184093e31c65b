"""Data-parallel training (CPU, gloo, 2 ranks under torchrun): equal to one process on the whole batch,
steerable through the control file, and a killed rank fails the run instead of hanging it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from geogui.engine.data import load_corpus
from geogui.engine.metrics import BatchRecord
from geogui.engine.trainer import Trainer

from .conftest import tiny_settings

WORKER = Path(__file__).with_name("ddp_worker.py")
MODES = ("standard", "geometric_fast", "geometric")


def torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


@pytest.mark.slow
def test_two_ranks_on_half_batches_end_equal_to_one_process_on_the_whole_batch(tmp_path):
    steps, global_batch = 5, 4
    # Ghosts stay dormant for 5 steps here (patience 20): the geometric step skips their experts.
    per_rank = tiny_settings(steps=steps, batch_size=global_batch // 2, eval_interval=1000, checkpoint_interval=0)
    done = subprocess.run(torchrun(str(WORKER), str(tmp_path), per_rank.model_dump_json(), *MODES),
                          env=child_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    corpus = load_corpus(per_rank.data, per_rank.model.seq_len)
    for mode in MODES:
        whole = tiny_settings(steps=steps, batch_size=global_batch, eval_interval=1000, mode=mode)
        trainer = Trainer(whole, corpus=corpus)
        losses = [event.loss for event in trainer.run() if isinstance(event, BatchRecord)]
        assert len(losses) == steps and all(map(torch.isfinite, torch.tensor(losses)))
        expected = {f"model.{k}": v for k, v in trainer.state.model.state_dict().items()}
        expected.update({f"rotator.{k}": v for k, v in trainer.state.rotator.state_dict().items()})
        ranks = [torch.load(tmp_path / f"{mode}-rank{rank}.pt", weights_only=False) for rank in (0, 1)]
        worst = 0.0
        for name, want in expected.items():
            if not isinstance(want, torch.Tensor) or not want.is_floating_point():
                continue
            for rank, got in enumerate(ranks):
                diff = (got[name] - want).abs().max().item()
                assert diff <= 1e-5, f"{mode}: rank {rank} {name} differs by {diff:.3g}"
                worst = max(worst, diff)
            assert torch.equal(ranks[0][name], ranks[1][name]), f"{mode}: the ranks disagree on {name}"
        print(f"{mode}: largest difference from one process {worst:.2g}")
