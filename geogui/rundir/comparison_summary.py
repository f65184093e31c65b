"""What a mode comparison found, per mode: speed (ms per step, tokens per second) and the held-out
loss at equal steps and at equal wall time, from the runs' metrics.jsonl. Written beside the runs
as comparison.md (a Markdown table) and comparison.json.

Equal steps: the last step at which every run was evaluated. Equal wall time: the largest wall time
every run reached, W; each run's last evaluation after a step that began by W (so a run stopped
at its wall-time budget counts with the evaluation made where it stopped). Equal wall time is what says whether a slower mode is worth its cost.

Speed leaves out each run's first step (its one-off warm-up); the wall time, which includes it,
is what the equal-time columns compare. Answer accuracy is read from the runs'
accuracy lines (`engine.samples.AccuracyRecord`); runs without them show "–" in its columns.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from geogui.atomic_write import atomic_write
from geogui.engine.metrics import RecordKind
from geogui.rundir.meta import read_meta
from geogui.rundir.reader import read_lines

SUMMARY_MD = "comparison.md"
SUMMARY_JSON = "comparison.json"
MISSING = "–"


@dataclass(frozen=True)
class RunMetrics:
    """The few columns of one run that the summary reads."""

    mode: str
    run: str
    batch_steps: list[int]
    batch_times_s: list[float]
    tokens_per_s: list[float]
    wall_times_s: list[float]
    evals: dict[int, float]  # step -> held-out loss
    accuracy: dict[int, float]  # step -> answer accuracy


@dataclass(frozen=True)
class ModeSummary:
    mode: str
    run: str
    steps: int
    ms_per_step: float | None  # mean batch time (forward, backward, optimizer), after the first step
    tokens_per_s: float | None  # over the steps after the first: their tokens over their time
    wall_s: float | None  # wall time at the last step
    eval_loss_at_equal_steps: float | None
    accuracy_at_equal_steps: float | None
    eval_loss_at_equal_time: float | None
    eval_step_at_equal_time: int | None  # the step of that evaluation
    accuracy_at_equal_time: float | None


@dataclass(frozen=True)
class ComparisonSummary:
    equal_step: int | None  # the step the equal-steps columns compare at
    equal_wall_s: float | None  # the wall time the equal-time columns compare at
    modes: tuple[ModeSummary, ...]

    def to_json(self) -> dict[str, Any]:
        return {"equal_step": self.equal_step, "equal_wall_s": self.equal_wall_s,
                "modes": [asdict(mode) for mode in self.modes]}

    def headers(self) -> list[str]:
        at_step = f"step {self.equal_step}" if self.equal_step is not None else "equal steps"
        at_time = f"{self.equal_wall_s:.1f} s" if self.equal_wall_s is not None else "equal time"
        return ["mode", "steps", "ms/step", "tokens/s", f"eval loss @ {at_step}", f"answer accuracy @ {at_step}",
                f"eval loss @ {at_time}", f"answer accuracy @ {at_time}", "run"]

    def rows(self) -> list[list[str]]:
        return [[m.mode, str(m.steps), _number(m.ms_per_step, 1), _number(m.tokens_per_s, 0),
                 _number(m.eval_loss_at_equal_steps, 4), _percent(m.accuracy_at_equal_steps),
                 _number(m.eval_loss_at_equal_time, 4) + (f" (step {m.eval_step_at_equal_time})"
                                                          if m.eval_step_at_equal_time is not None else ""),
                 _percent(m.accuracy_at_equal_time), m.run] for m in self.modes]

    def to_markdown(self) -> str:
        lines = [self.headers(), ["---"] * len(self.headers()), *self.rows()]
        return "\n".join("| " + " | ".join(line) + " |" for line in lines) + "\n"


def _number(value: float | None, digits: int) -> str:
    return MISSING if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def _percent(value: float | None) -> str:
    return MISSING if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


def read_run_metrics(run_dir: Path) -> RunMetrics:
    """Raises RunLogError (meta.json) or OSError (metrics.jsonl) when the run cannot be read."""
    meta = read_meta(run_dir)
    steps, times, tokens, walls, evals, accuracy = [], [], [], [], {}, {}
    for line in read_lines(run_dir).lines:
        step = line.get("step")
        if not isinstance(step, int):
            continue
        if line.get("kind") == RecordKind.BATCH:
            steps.append(step)
            times.append(_float(line.get("batch_time_s")))
            tokens.append(_float(line.get("tokens_per_s")))
            walls.append(_float(line.get("wall_time_s")))
        elif line.get("kind") == RecordKind.EVAL and _float(line.get("loss")) is not None:
            evals[step] = float(line["loss"])
        elif line.get("kind") == RecordKind.ACCURACY and isinstance(line.get("asked"), int) and line["asked"] > 0:
            accuracy[step] = int(line.get("right", 0)) / line["asked"]
    return RunMetrics(meta.initial_mode or "?", meta.name or Path(run_dir).name, steps, times, tokens, walls,
                      evals, accuracy)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) else None


def _mean(values: Iterable[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return sum(known) / len(known) if known else None


def _harmonic_mean(values: Iterable[float | None]) -> float | None:
    """Of rates over equal amounts (tokens per second, the same tokens every step): total tokens over
    total time, where an arithmetic mean would let the fastest steps count for too much."""
    known = [value for value in values if value is not None and value > 0]
    return len(known) / sum(1 / value for value in known) if known else None


def _steady(values: list[float | None]) -> list[float | None]:
    """Every step's value but the first's, which pays each mode's one-off warm-up (first kernels,
    allocations, compilation): the same rule for every mode. A one-step run keeps its one."""
    return values[1:] if len(values) > 1 else values


def _at_or_before(values: dict[int, float], step: int | None) -> float | None:
    steps = [s for s in values if step is not None and s <= step]
    return values[max(steps)] if steps else None


def _wall_at(run: RunMetrics, step: int) -> float | None:
    walls = {s: w for s, w in zip(run.batch_steps, run.wall_times_s) if w is not None}
    return _at_or_before(walls, step)


def _last_eval_within(run: RunMetrics, wall_s: float | None) -> int | None:
    """The last evaluation after a step that began by `wall_s` (when the step before it ended): a
    run stopped at its budget began its last step within it, and was evaluated there."""
    if wall_s is None:
        return None
    began = {step: 0.0 if step == 1 else _wall_at(run, step - 1) for step in run.evals}
    within = [step for step, wall in began.items() if wall is not None and wall <= wall_s]
    return max(within) if within else None


def summarize_runs(runs: list[RunMetrics]) -> ComparisonSummary:
    common = set.intersection(*(set(run.evals) for run in runs)) if runs else set()
    equal_step = max(common) if common else None
    last_walls = [next((w for w in reversed(run.wall_times_s) if w is not None), None) for run in runs]
    equal_wall = min(last_walls) if runs and None not in last_walls else None
    modes = []
    for run in runs:
        step_at_time = _last_eval_within(run, equal_wall)
        modes.append(ModeSummary(
            mode=run.mode, run=run.run, steps=max(run.batch_steps, default=0),
            ms_per_step=None if (mean := _mean(_steady(run.batch_times_s))) is None else 1000 * mean,
            tokens_per_s=_harmonic_mean(_steady(run.tokens_per_s)),
            wall_s=next((w for w in reversed(run.wall_times_s) if w is not None), None),
            eval_loss_at_equal_steps=run.evals.get(equal_step) if equal_step is not None else None,
            accuracy_at_equal_steps=_at_or_before(run.accuracy, equal_step),
            eval_loss_at_equal_time=run.evals.get(step_at_time) if step_at_time is not None else None,
            eval_step_at_equal_time=step_at_time,
            accuracy_at_equal_time=_at_or_before(run.accuracy, step_at_time)))
    return ComparisonSummary(equal_step, equal_wall, tuple(modes))


def summarize_comparison(run_dirs: Iterable[Path]) -> ComparisonSummary:
    """The summary of the runs in `run_dirs`, one row each, in that order."""
    return summarize_runs([read_run_metrics(Path(path)) for path in run_dirs])


def write_summary(group_dir: Path, summary: ComparisonSummary, title: str = "") -> Path:
    """comparison.md and comparison.json in `group_dir`; the path of the Markdown file."""
    group_dir = Path(group_dir)
    group_dir.mkdir(parents=True, exist_ok=True)
    heading = f"# {title}\n\n" if title else ""
    with atomic_write(group_dir / SUMMARY_MD) as handle:
        handle.write(heading + summary.to_markdown())
    with atomic_write(group_dir / SUMMARY_JSON) as handle:
        json.dump(summary.to_json(), handle, indent=2)
    return group_dir / SUMMARY_MD
