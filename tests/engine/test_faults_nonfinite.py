"""Fault suite: a learning rate far too high drives the loss to NaN/inf. The update is skipped, the run
says at which step and which term, and the last checkpoint whose weights still gave a finite loss is
the one kept, even when a checkpoint was written just before the divergence."""

from __future__ import annotations

import torch

from geogui.engine.checkpoint import latest_checkpoint, read_checkpoint_step
from geogui.engine.metrics import BatchRecord, RunEvent
from geogui.rundir.recorder import record_run
from geogui.rundir.runlog import RunLog, read_meta
from geogui.engine.trainer import Trainer
from geogui.settings import Settings

from tests.conftest import tiny_settings


def with_learning_rate(settings: Settings, rate: float) -> Settings:
    """The settings refuse a rate above 1; a test of divergence goes past that on purpose."""
    run = settings.run.model_copy(update={"learning_rate": rate, "rotation_learning_rate": rate, "warmup_steps": 0})
    return settings.model_copy(update={"run": run})


def run_until_paused(trainer: Trainer, log: RunLog, huge_from_step: int) -> list:
    events = []
    for event in record_run(trainer, log):
        events.append(event)
        if isinstance(event, BatchRecord) and event.step == huge_from_step - 1:
            for group in trainer.state.model_optimizer.param_groups:
                group["lr"] = 1e30  # the next update uses the huge rate too (the schedule sets it per step)
            trainer.settings = with_learning_rate(trainer.settings, 1e30)
        if isinstance(event, RunEvent) and event.event == "paused":
            trainer.stop()
    return events


def test_a_huge_learning_rate_reports_the_step_and_term_and_keeps_the_checkpoint_before_it(tmp_path):
    settings = tiny_settings(steps=40, checkpoint_interval=1)
    trainer = Trainer(settings)
    events = run_until_paused(trainer, RunLog(tmp_path / "run", settings), huge_from_step=6)
    report = [e for e in events if isinstance(e, RunEvent) and e.event == "nonfinite_loss"][0]
    # Step 6 trains with the huge rate (its loss, computed before the update, is still finite); the
    # weights it leaves give a non-finite loss at step 7. Checkpoint 6 holds them: discarded for 5.
    assert report.step == 7 and "non-finite at step 7" in report.message
    assert "= nan" in report.message or "= inf" in report.message
    kept = [e for e in events if isinstance(e, RunEvent) and e.event == "good_checkpoint"][0]
    assert kept.step == 5 and kept.message == "the last good checkpoint is kept: step 5"
    checkpoint = latest_checkpoint(tmp_path / "run")
    assert read_checkpoint_step(checkpoint) == 5
    weights = torch.load(checkpoint, weights_only=True)["model"]
    assert all(torch.isfinite(t).all() for t in weights.values()
               if isinstance(t, torch.Tensor) and t.is_floating_point())
    assert read_meta(tmp_path / "run").status == "stopped"
    logged = [e.event for e in read_meta(tmp_path / "run").events]
    assert logged[-3:] == ["nonfinite_loss", "good_checkpoint", "paused"]


def test_resuming_from_the_kept_checkpoint_with_a_lower_rate_trains_on(tmp_path):
    settings = tiny_settings(steps=12, checkpoint_interval=1)
    trainer = Trainer(settings)
    run_until_paused(trainer, RunLog(tmp_path / "run", settings), huge_from_step=6)
    lower = with_learning_rate(settings, settings.run.learning_rate * 0.1)
    resumed = Trainer(lower, resume_from=latest_checkpoint(tmp_path / "run"))
    events = list(record_run(resumed, RunLog.reopen(tmp_path / "run", lower, 5)))
    steps = [e.step for e in events if isinstance(e, BatchRecord)]
    assert steps == list(range(6, 13))
    assert all(torch.isfinite(torch.tensor(e.loss)) for e in events if isinstance(e, BatchRecord))
    assert read_meta(tmp_path / "run").status == "finished"


def test_no_checkpoint_yet_is_said_so(tmp_path):
    settings = tiny_settings(steps=40, checkpoint_interval=100)
    trainer = Trainer(settings)
    events = run_until_paused(trainer, RunLog(tmp_path / "run", settings), huge_from_step=2)
    kept = [e for e in events if isinstance(e, RunEvent) and e.event == "good_checkpoint"][0]
    assert kept.step == 0 and kept.message == "there is no good checkpoint yet"
    assert latest_checkpoint(tmp_path / "run") is None  # the diverged state was not saved on stop
