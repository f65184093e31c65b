"""Compare modes: standard, geometric_fast and geometric trained one after another from the same
initial weights, the same seed and the same batch order, for the same number of steps or the same
wall time, as three ordinary run directories of one group.

The group: each run's meta.json names it (`group`, and `comparison` says the budget and the mode),
and its runs lie beside the others in the runs folder, named `<group>-<mode>`, so that the Runs
panel lists, opens, exports and resumes them like any other run. The group's own folder
(`<group>/`, beside them) holds the initial weights and the summary (`comparison_summary`).

Identical weights: the first run's freshly built model and rotator are saved to the group folder
before its first step, and every later run loads them before its first step. The seed alone gives
the same weights on a CPU; the saved state also holds where a device or a mode would build them
differently.

Equal wall time: each run trains until its budget is used (its steps setting is then the upper
bound), and stops cleanly: status "stopped", with a `budget_reached` event and `stopped_at_budget`
in meta.json saying it stopped at its budget, and an evaluation at the step it stopped at. Its
clock is injectable, so tests need no real time.

No Qt, and torch only on first use (the window plans a comparison on the GUI thread).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from geogui.atomic_write import atomic_write
from geogui.engine.metrics import BatchRecord, RunEvent, RunStarted
from geogui.rundir.driver import DriverEvent, RunDriver
from geogui.settings import Mode, Settings

COMPARED_MODES = (Mode.STANDARD, Mode.GEOMETRIC_FAST, Mode.GEOMETRIC)
INITIAL_STATE_FILE = "initial_state.pt"
BUDGET_REACHED = "budget_reached"  # the event a run stopped at its wall-time budget logs
MAX_STEPS = 10_000_000  # as the settings' steps
MAX_SECONDS = 7 * 24 * 3600.0


class ComparisonBudget(BaseModel):
    """How long each mode trains: `steps` steps, or `seconds` of wall time (then `steps`, when given,
    is the upper bound; else the settings' steps are)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    kind: Literal["steps", "wall_time"] = Field("steps", title="Compare at equal")
    steps: int | None = Field(None, ge=1, le=MAX_STEPS, title="Steps per mode")
    seconds: float | None = Field(None, gt=0, le=MAX_SECONDS, title="Seconds per mode")

    @model_validator(mode="after")
    def _has_its_amount(self) -> "ComparisonBudget":
        if self.kind == "steps" and self.steps is None:
            raise ValueError("an equal-steps comparison needs its number of steps")
        if self.kind == "wall_time" and self.seconds is None:
            raise ValueError("an equal-wall-time comparison needs its number of seconds")
        return self

    def describe(self) -> str:
        if self.kind == "steps":
            return f"{self.steps} steps per mode"
        return f"{self.seconds:g} s of wall time per mode"


@dataclass(frozen=True)
class ComparisonLeg:
    """One mode's run of the comparison."""

    mode: Mode
    settings: Settings
    run_dir: Path


@dataclass(frozen=True)
class ComparisonPlan:
    group: str
    group_dir: Path  # the initial weights and the summary
    budget: ComparisonBudget
    legs: tuple[ComparisonLeg, ...]

    @property
    def run_dirs(self) -> list[Path]:
        return [leg.run_dir for leg in self.legs]

    def driver(self, leg: ComparisonLeg, clock: Callable[[], float] | None = None) -> "ComparisonDriver":
        """The leg's driver; its budget is measured on `clock` (default `wall_clock`)."""
        return ComparisonDriver(self, leg, clock if clock is not None else wall_clock)


def wall_clock() -> float:
    return time.monotonic()


def new_group_name() -> str:
    return "compare-" + datetime.now().strftime("%Y%m%d-%H%M%S")


def plan_comparison(settings: Settings, budget: ComparisonBudget, root: Path | None = None,
                    group: str | None = None) -> ComparisonPlan:
    """The three runs' settings and directories under `root` (default: the runs folder). Writes
    nothing; a group name already taken gets a numbered suffix."""
    if root is None:
        from geogui.paths import runs_dir

        root = runs_dir()
    root, base = Path(root), group or new_group_name()
    group, number = base, 1
    while any(path.exists() for path in _paths(root, group)):
        number += 1
        group = f"{base}-{number}"
    steps = budget.steps if budget.steps is not None else settings.run.steps
    legs = tuple(ComparisonLeg(mode, _with_run(settings, mode=mode, steps=steps), root / f"{group}-{mode.value}")
                 for mode in COMPARED_MODES)
    return ComparisonPlan(group, root / group, budget, legs)


def _paths(root: Path, group: str) -> list[Path]:
    return [root / group] + [root / f"{group}-{mode.value}" for mode in COMPARED_MODES]


def _with_run(settings: Settings, **run) -> Settings:
    data = settings.model_dump()
    data["run"].update(run)
    return Settings.model_validate(data)


class ComparisonDriver(RunDriver):
    """A RunDriver for one leg: its run directory and group in meta.json, the group's initial weights
    loaded before step 1, and, for an equal-wall-time comparison, a clean stop at the budget."""

    def __init__(self, plan: ComparisonPlan, leg: ComparisonLeg, clock: Callable[[], float]) -> None:
        super().__init__(leg.settings, leg.run_dir, None)
        self.comparison, self.leg, self._clock = plan, leg, clock
        self._started_at: float | None = None
        self.stopped_at_budget = False

    def open_log(self, **meta) -> Path:
        budget = self.comparison.budget
        return super().open_log(**meta, group=self.comparison.group, comparison={
            "mode": self.leg.mode.value, "budget": budget.kind, "steps": budget.steps, "seconds": budget.seconds,
            "runs": [path.name for path in self.comparison.run_dirs]})

    def run(self) -> Iterator[DriverEvent]:
        events = super().run()
        try:
            for event in events:
                if isinstance(event, RunStarted):
                    self._share_initial_state()
                    self._started_at = self._clock()
                yield event
                if isinstance(event, BatchRecord) and self._budget_used() and not self.stopped_at_budget:
                    yield from self._stop_at_budget(event.step)
        finally:
            events.close()

    def _budget_used(self) -> bool:
        budget = self.comparison.budget
        return budget.kind == "wall_time" and self._clock() - self._started_at >= budget.seconds

    def _stop_at_budget(self, step: int) -> Iterator[DriverEvent]:
        """Stop before the next step (the run closes as "stopped"), and evaluate where it stopped, loss
        and answer accuracy, as a run's last evaluation does (what the trainer has not measured at
        this step already): equal wall time compares these."""
        self.trainer.stop()
        self.stopped_at_budget = True
        event = RunEvent(step, BUDGET_REACHED, f"stopped at its wall-time budget of "
                                               f"{self.comparison.budget.seconds:g} s after {step} steps")
        self.note(stopped_at_budget=True)  # written with the event's meta.json
        run = self.settings.run
        final = self.trainer.closing_checks(evaluated=step % run.eval_interval == 0 or step == run.steps)
        for record in [event, *final]:
            if self.log is not None:
                self.log.write(record)
            yield record

    def _share_initial_state(self) -> None:
        """Before step 1: save this run's initial weights for the group, or load the group's."""
        import torch

        state = self.trainer.state
        file = self.comparison.group_dir / INITIAL_STATE_FILE
        if file.is_file():
            saved = torch.load(file, map_location="cpu", weights_only=True)
            state.model.load_state_dict(saved["model"])
            state.rotator.load_state_dict(saved["rotator"])
            return
        file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(file, "wb") as handle:
            torch.save({"model": state.model.state_dict(), "rotator": state.rotator.state_dict()}, handle)
