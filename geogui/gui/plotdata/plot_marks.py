"""Where the plots' mode and pause marks go, at today's x positions. No Qt: `mode_marks` paints these.

A run shown alone gets a tint per mode segment and a labelled dashed line per mode change. Runs
compared get a `RunStrip` each instead: a thin band along the bottom of every plot, coloured by mode,
with the run's switches and pauses in the run's colour, because tints of several runs stacked over
each other do not read. Every edge lies halfway between two batches.
"""

from __future__ import annotations

from dataclasses import dataclass

from geogui.engine.metrics import ModeChange
from geogui.gui.palette import mode_color
from geogui.gui.plotdata.shown_series import RunView
from geogui.settings import Mode


@dataclass(frozen=True)
class ModeBand:
    """A stretch of x trained in one mode, tinted in that mode's colour."""

    left: float
    right: float
    color: str


@dataclass(frozen=True)
class ModeMark:
    """A mode change drawn as a dashed line at `x`, labelled."""

    x: float
    color: str
    label: str


@dataclass(frozen=True)
class PauseMark:
    """A pause after batch `step`, from `left` to `right` on the x axis: the same x on the step and token
    axes (no batch was trained), the stretch of clock it lasted on the wall-time axis."""

    step: int
    left: float
    right: float


@dataclass(frozen=True)
class RunStrip:
    """One compared run's modes along the bottom of a plot: its mode bands, its switches and pauses,
    drawn in the run's `color` and named by `label`."""

    label: str
    color: str
    bands: tuple[ModeBand, ...]
    switches: tuple[float, ...]
    pauses: tuple[PauseMark, ...]


def mode_label(mode: str) -> str:
    try:
        return Mode(mode).label
    except ValueError:
        return mode


def change_label(change: ModeChange) -> str:
    label = mode_label(change.mode)
    if change.penalty_weight != change.previous_penalty_weight:
        label += f"  w={change.penalty_weight:g}"
    return label


def bands_of(run: RunView) -> list[ModeBand]:
    """The run's mode segments: the last one grows with the run, and a wall-time or token axis moves
    them all."""
    series = run.series
    segments = series.segments
    if not segments:
        return []
    last_step = float(series.step.view()[-1]) if len(series) else segments[-1].start_step
    edges = run.x_at_steps([s.start_step - 0.5 for s in segments] + [last_step + 0.5])
    return [ModeBand(float(left), float(max(left, right)), mode_color(segment.mode))
            for segment, left, right in zip(segments, edges, edges[1:])]


def marks_of(run: RunView) -> tuple[list[ModeBand], list[ModeMark]]:
    """The run's mode segments and its labelled mode changes."""
    changes = run.series.mode_changes
    marks = []
    if changes:
        positions = run.x_at_steps([change.step - 0.5 for change in changes])
        marks = [ModeMark(float(x), mode_color(change.mode), change_label(change))
                 for change, x in zip(changes, positions)]
    return bands_of(run), marks


def pauses_of(run: RunView) -> list[PauseMark]:
    """The run's pauses. On the wall-time axis a pause spans the clock between the batch before it and
    the one after (that batch's own time included: the log has no finer clock); until that batch
    arrives it is a line."""
    steps = run.series.pauses
    if not steps:
        return []
    if run.x_kind == "wall_time":
        before, after = run.x_at_steps(steps), run.x_at_steps([s + 1 for s in steps])
    else:
        before = after = run.x_at_steps([s + 0.5 for s in steps])
    return [PauseMark(step, float(left), float(max(left, right))) for step, left, right in zip(steps, before, after)]


def strip_of(run: RunView, color: str) -> RunStrip:
    """A compared run's strip: its modes, where it switched and where it paused."""
    changes = run.series.mode_changes
    switches = run.x_at_steps([change.step - 0.5 for change in changes]) if changes else []
    return RunStrip(run.label, color, tuple(bands_of(run)), tuple(float(x) for x in switches),
                    tuple(pauses_of(run)))
