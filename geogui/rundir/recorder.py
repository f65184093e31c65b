"""Drive a run into its run directory: every event to the log, a checkpoint every N steps and one
when the run ends, and the final status recorded however the run ends. The app's worker and the
headless CLI both train through `record_run`, so the two write identical run directories.

The checkpoint is the run's last *good* state. After a non-finite loss the trainer skips the update,
but weights that produced a NaN are not worth continuing from, so no checkpoint is written until a
batch trains with a finite loss again: closing or stopping a diverged run keeps the one before. If
the latest checkpoint holds the very weights that diverged (it was written at the step just before),
it is discarded for the one before it. A `good_checkpoint` event right after `nonfinite_loss` says
which step the run can be resumed from (its step is 0 when there is none).

When the run dies of an error (out of memory, a full disk), that error is what the caller sees: the
closing checkpoint and status are attempted, and their own failures do not hide it."""

from __future__ import annotations

from typing import Iterator

from geogui.engine.checkpoint import discard_latest_checkpoint, save_checkpoint
from geogui.engine.metrics import BatchRecord, RunEvent, RunFinished, RunStarted, TrainerEvent
from geogui.rundir.runlog import RunLog
from geogui.engine.trainer import Trainer

NONFINITE = "nonfinite_loss"
GOOD_CHECKPOINT = "good_checkpoint"


def record_run(trainer: Trainer, log: RunLog) -> Iterator[TrainerEvent]:
    interval = trainer.settings.run.checkpoint_interval
    status = "failed"
    last_saved = -1
    saved: list[int] = []  # steps of previous.pt and latest.pt
    diverged = False  # a non-finite loss since the last finite batch: the state is not worth keeping
    failure: BaseException | None = None
    try:
        for event in trainer.run():
            log.write(event)
            kept = None
            if isinstance(event, RunStarted) and trainer.resume_from is not None:
                saved = [event.start_step]  # the checkpoint this run continues from
            elif isinstance(event, RunEvent) and event.event == NONFINITE:
                diverged = True
                if saved and saved[-1] == event.step - 1:  # those weights gave the non-finite loss
                    discard_latest_checkpoint(log.path)
                    saved.pop()
                    last_saved = -1
                good = saved[-1] if saved else 0
                kept = RunEvent(good, GOOD_CHECKPOINT, f"the last good checkpoint is kept: step {good}" if good
                                else "there is no good checkpoint yet")
            elif isinstance(event, BatchRecord):
                diverged = False
                if interval and event.step % interval == 0:
                    save_checkpoint(log.path, trainer.state, trainer.settings.model)
                    last_saved = event.step
                    saved[:] = saved[-1:] + [event.step]
            if isinstance(event, RunFinished):
                status = event.status
            yield event
            if kept is not None:
                log.write(kept)
                yield kept
    except (GeneratorExit, KeyboardInterrupt):
        status = "stopped"  # the consumer stopped listening, or the user pressed Ctrl+C
        raise
    except BaseException as exc:
        failure = exc
        raise
    finally:
        state = trainer.state
        try:
            if state is not None and state.step > 0 and state.step != last_saved and not diverged:
                save_checkpoint(log.path, state, trainer.settings.model)
        except Exception:
            status = "failed"
            if failure is None:
                raise  # the run itself went well: its last checkpoint failing is the news
        finally:
            try:
                log.close(status)
            except OSError:
                if failure is None:
                    raise
