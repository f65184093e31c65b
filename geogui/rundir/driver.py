"""One run, from settings to a closed run directory: plan a resume, check memory, load the corpus,
build the Trainer, open or reopen the log, record every event, and turn a failure into one line.

geogui-train, every rank under torchrun and the app's worker all drive their runs through here, so
they refuse the same things in the same words and end a broken run the same way. Nothing here
prints or knows of Qt: what cannot start raises `RunRefused` before the run directory is written,
`RunDriver.run` yields the trainer's events while they are recorded, and a run that breaks ends with
one `RunFailed` event. The caller decides what to show.

torch is imported on first use, not with this module: the window plans a resume on the GUI thread,
where importing torch would stall it, and `geogui-train --help` stays instant.

Where this reads or writes meta.json by key: `plan_resume` (settings, pid, steps_done, status via
`effective_status`), `RunDriver.open_log` and `note` (extra fields), `_logged_step` (steps_done) and
`record_failure` (status, error).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Union

from pydantic import ValidationError

from geogui.engine.failures import describe_failure
from geogui.engine.memory_estimate import MemoryEstimateError, refuse_if_too_big
from geogui.engine.metrics import RunFinished, TrainerEvent
from geogui.rundir.runlog import META_FILE, RunLog, RunLogError, effective_status, read_meta, read_typed_records
from geogui.settings import Settings, describe_validation_error

if TYPE_CHECKING:
    from geogui.engine.data import Corpus
    from geogui.engine.trainer import Trainer

# Why a run was refused (`RunRefused.reason`), for callers that add their own advice.
UNREADABLE = "unreadable"  # meta.json missing or damaged
RUNNING = "running"  # another process (or this one) is writing the run
FINISHED = "finished"  # a resume of a finished run with no more steps asked for
BAD_SETTINGS = "settings"  # the run's settings, or what the resume changes in them, do not validate
NO_CHECKPOINT = "no_checkpoint"
BAD_CHECKPOINT = "checkpoint"  # unreadable, or its model differs from the settings
AT_END = "at_end"  # the checkpoint is already at the run's last step
BAD_DATA = "data"
TOO_BIG = "memory"
RUN_DIR = "run_dir"  # the run directory cannot be created, written or locked


class RunRefused(Exception):
    """The run cannot start and nothing of it was written; str() says why, naming the file or setting."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ResumePlan:
    """A run to continue in its own directory, with its own settings (learning rates possibly scaled).
    With `more_steps`, the run's length becomes the checkpoint's step plus that many, once the
    checkpoint is read (`RunDriver.prepare`)."""

    run_dir: Path
    settings: Settings
    more_steps: int | None = None


@dataclass(frozen=True)
class ResumePoint:
    checkpoint: Path
    step: int


@dataclass(frozen=True, slots=True)
class RunFailed:
    """The run broke; its log is closed as failed. The last event `RunDriver.run` yields."""

    step: int  # the last step logged
    message: str  # one line: what happened, what was kept, what to do
    environment: bool  # out of memory, a full disk, ...; False for an error nobody foresaw (a bug)


DriverEvent = Union[TrainerEvent, RunFailed]


def plan_resume(run_dir: Path, *, more_steps: int | None = None, learning_rate_factor: float = 1.0) -> ResumePlan:
    """What continuing `run_dir` means, or RunRefused saying why it cannot be continued. Reads only
    meta.json (no torch): the checkpoint is checked by `RunDriver.prepare`, before anything is written."""
    run_dir = Path(run_dir)
    try:
        meta = read_meta(run_dir)
    except RunLogError as exc:
        raise RunRefused(str(exc), UNREADABLE) from None
    status = effective_status(meta)
    if status == "running":
        raise RunRefused(f"{run_dir}: the run is still being written by process {meta.pid}", RUNNING)
    try:
        settings = meta.settings_model()
        if learning_rate_factor != 1.0:
            settings = lower_learning_rates(settings, learning_rate_factor)
    except ValidationError as exc:
        raise RunRefused(f"{run_dir / META_FILE}: {describe_validation_error(exc)}", BAD_SETTINGS) from None
    if status == "finished" and more_steps is None:
        total = settings.run.steps
        done = meta.steps_done or total
        raise RunRefused(f"{run_dir} has finished all its {total} steps (already at step {done} of {total}); "
                         "there is nothing to continue", FINISHED)
    return ResumePlan(run_dir, settings, more_steps)


def lower_learning_rates(settings: Settings, factor: float) -> Settings:
    """Both learning rates times `factor`, validated (ValidationError if that leaves their bounds)."""
    data = settings.model_dump()
    data["run"]["learning_rate"] *= factor
    data["run"]["rotation_learning_rate"] *= factor
    return Settings.model_validate(data)


def one_line(exc: BaseException) -> str:
    """An exception as one line: geogui's own errors read as sentences, others need their type."""
    message = " ".join(str(exc).split())
    if type(exc).__module__.startswith("geogui."):
        return message or type(exc).__name__
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class RunDriver:
    """Drives one run. Call, in order: `prepare`, then `build_trainer` and `open_log` (in the order the
    caller needs), then iterate `run`. The run's settings are `settings` (a resume with more steps
    changes their length in `prepare`)."""

    def __init__(self, settings: Settings, out: Path | None, plan: ResumePlan | None) -> None:
        self.settings = settings
        self.out = Path(out) if out is not None else None
        self.plan = plan
        self.resume_point: ResumePoint | None = None
        self.corpus: Corpus | None = None
        self.trainer: Trainer | None = None
        self.log: RunLog | None = None
        self.status = "failed"  # until the trainer says how the run ended
        self.error: Exception | None = None  # what broke the run, for a caller that wants the traceback

    @classmethod
    def new(cls, settings: Settings, out: Path | None = None) -> "RunDriver":
        """A new run in `out`, or in a new directory of the runs folder."""
        return cls(settings, out, None)

    @classmethod
    def resuming(cls, plan: ResumePlan) -> "RunDriver":
        return cls(plan.settings, plan.run_dir, plan)

    @property
    def start_step(self) -> int:
        return self.resume_point.step if self.resume_point is not None else 0

    @property
    def path(self) -> Path | None:
        """The run directory, once the log is open."""
        return self.log.path if self.log is not None else None

    # -- before anything is written ---------------------------------------------------------------
    def prepare(self) -> None:
        """The resume point (checkpoint found, loadable, short of the end), then the memory check and
        the corpus. RunRefused when any fails; the run directory is untouched either way."""
        from geogui.engine.data import DataError, load_corpus

        if self.plan is not None:
            self.resume_point = self._resume_point(self.plan)
        try:
            refuse_if_too_big(self.settings)
        except MemoryEstimateError as exc:
            raise RunRefused(str(exc), TOO_BIG) from None
        try:
            self.corpus = load_corpus(self.settings.data, self.settings.model.seq_len)
        except DataError as exc:
            raise RunRefused(str(exc), BAD_DATA) from None

    def _resume_point(self, plan: ResumePlan) -> ResumePoint:
        from geogui.engine.checkpoint import CheckpointError, check_checkpoint, latest_checkpoint

        checkpoint = latest_checkpoint(plan.run_dir)
        if checkpoint is None:
            raise RunRefused(f"{plan.run_dir}: no checkpoint to resume from", NO_CHECKPOINT)
        try:
            step = check_checkpoint(checkpoint, self.settings.model)
        except CheckpointError as exc:
            raise RunRefused(str(exc), BAD_CHECKPOINT) from None
        if plan.more_steps is not None:
            self.settings = _with_steps(self.settings, step + plan.more_steps, plan.run_dir)
        if self.settings.run.steps <= step:
            raise RunRefused(f"{plan.run_dir}: already at step {step} of {self.settings.run.steps}", AT_END)
        return ResumePoint(checkpoint, step)

    def earlier_records(self) -> list:
        """A resumed run's typed records up to its checkpoint's step (those past it are trained again);
        [] for a new run. Not kept here: a long run's records are the caller's to drop once shown."""
        if self.resume_point is None:
            return []
        step = self.resume_point.step
        return [record for record in read_typed_records(self.plan.run_dir) if record.step <= step]

    def build_trainer(self, *, on_nonfinite: str = "pause", replicas: Any = None, commands: Any = None,
                      trainer_settings: Settings | None = None) -> "Trainer":
        """The Trainer, from the resume point when there is one. `trainer_settings`: what the trainer
        runs with when it differs from what the run records (a device chosen for this rank)."""
        from geogui.engine.trainer import Trainer

        self.trainer = Trainer(trainer_settings or self.settings, on_nonfinite=on_nonfinite, corpus=self.corpus,
                               resume_from=self.resume_point.checkpoint if self.resume_point else None,
                               replicas=replicas, commands=commands)
        return self.trainer

    def open_log(self, **meta: Any) -> Path:
        """Create the run directory (or reopen the resumed one after its checkpoint's step), with
        `meta`'s fields added to its description; RunRefused when it cannot be written or is locked."""
        try:
            if self.resume_point is not None:
                log = RunLog.reopen(self.out, self.settings, self.resume_point.step)
            else:
                log = RunLog(self.out, self.settings) if self.out is not None else RunLog.create(self.settings)
        except RunLogError as exc:  # another process is writing that run
            raise RunRefused(str(exc), RUN_DIR) from None
        except OSError as exc:
            where = exc.filename or self.out or "the runs folder"
            raise RunRefused(f"{where}: cannot write the run directory ({exc.strerror or exc})", RUN_DIR) from None
        self.log = log
        self.note(**meta)
        return log.path

    def note(self, **meta: Any) -> None:
        """Fields for the run's description; written with the next change of meta.json (at the latest
        when the log closes)."""
        if self.log is not None:
            for key, value in meta.items():  # fields not in RunMeta are kept as extra keys
                setattr(self.log.meta, key, value)

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> Iterator[DriverEvent]:
        """The trainer's events, each recorded before it is yielded (without an open log, as under
        torchrun on the ranks that do not write, they are only yielded). The log is closed however the
        run ends; when it breaks, `RunFailed` is the last event and `error` holds the exception."""
        from geogui.rundir.recorder import record_run

        events = record_run(self.trainer, self.log) if self.log is not None else self.trainer.run()
        try:
            for event in events:
                if isinstance(event, RunFinished):
                    self.status = event.status
                yield event
        except Exception as exc:  # noqa: BLE001 - every failure ends as one line; the caller has the rest
            self.error, self.status = exc, "failed"
            self._close("failed")
            step = self._logged_step()
            message = describe_failure(exc, step, self.path)
            yield RunFailed(step, message or one_line(exc), message is not None)
        finally:
            events.close()  # a consumer that stops listening stops the run: the log says "stopped"

    def record_failure(self, message: str) -> None:
        """Close the run as failed with `message` in its description (a failure under torchrun, which
        names the rank that failed)."""
        if self.log is None:
            return
        self._close("failed")  # a full disk that keeps the log from closing is already the failure
        self.log.record_failure(message)

    def _close(self, status: str) -> None:
        if self.log is None:
            return
        try:
            self.log.close(status)  # record_run has usually closed it already (then this does nothing)
        except OSError:  # a full disk, which the failure already says
            pass

    def _logged_step(self) -> int:
        if self.log is not None:
            return self.log.meta.steps_done
        state = self.trainer.state if self.trainer is not None else None
        return state.step if state is not None else 0


def _with_steps(settings: Settings, steps: int, run_dir: Path) -> Settings:
    try:
        return Settings.model_validate({**settings.model_dump(), "run": {**settings.run.model_dump(), "steps": steps}})
    except ValidationError as exc:
        raise RunRefused(f"{run_dir}: {describe_validation_error(exc)}", BAD_SETTINGS) from None
