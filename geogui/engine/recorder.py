"""Drive a run into its run directory: every event to the log, a checkpoint every N steps and one
when the run ends, and the final status recorded however the run ends. The app's worker and the
headless CLI both train through `record_run`, so the two write identical run directories."""

from __future__ import annotations

from typing import Iterator

from geogui.engine.checkpoint import save_checkpoint
from geogui.engine.metrics import BatchRecord, RunFinished, TrainerEvent
from geogui.engine.runlog import RunLog
from geogui.engine.trainer import Trainer


def record_run(trainer: Trainer, log: RunLog) -> Iterator[TrainerEvent]:
    interval = trainer.settings.run.checkpoint_interval
    status = "failed"
    last_saved = -1
    try:
        for event in trainer.run():
            log.write(event)
            if isinstance(event, BatchRecord) and interval and event.step % interval == 0:
                save_checkpoint(log.path, trainer.state, trainer.settings.model)
                last_saved = event.step
            if isinstance(event, RunFinished):
                status = event.status
            yield event
    except (GeneratorExit, KeyboardInterrupt):
        status = "stopped"  # the consumer stopped listening, or the user pressed Ctrl+C
        raise
    finally:
        state = trainer.state
        try:
            if state is not None and state.step > 0 and state.step != last_saved:
                save_checkpoint(log.path, state, trainer.settings.model)
        finally:
            log.close(status)
