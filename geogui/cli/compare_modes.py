"""geogui-train --compare-modes: the three modes in turn from the same initial weights, a progress
line each, then the summary table on standard output (and comparison.md beside the runs)."""

from __future__ import annotations

import sys
from pathlib import Path

from geogui.cli.terminal import InputError, ProgressBar, follow_run, report_end
from geogui.engine.control_file import ControlFileReader
from geogui.rundir.comparison_summary import summarize_comparison, write_summary
from geogui.rundir.mode_comparison import ComparisonBudget, plan_comparison
from geogui.settings import Settings

PROGRAM = "geogui-train"


def budget_from_args(equal: str, seconds: float | None, steps: int) -> ComparisonBudget:
    """--equal steps|time and --budget-seconds as a budget; `steps` (the settings' or --steps) is the
    number of steps, or with --equal time their upper bound."""
    if equal == "time":
        if seconds is None:
            raise InputError("--equal time needs --budget-seconds S (the wall time each mode trains)")
        if not seconds > 0:
            raise InputError(f"--budget-seconds must be more than 0, got {seconds:g}")
        return ComparisonBudget(kind="wall_time", seconds=seconds, steps=steps)
    if seconds is not None:
        raise InputError("--budget-seconds goes with --equal time")
    return ComparisonBudget(kind="steps", steps=steps)


def compare_modes(settings: Settings, budget: ComparisonBudget, out: Path | None, quiet: bool = False) -> int:
    """Train the three runs in turn; 0 when all three ended well (finished, or stopped at their
    budget), 1 when one failed or was interrupted (the runs done so far are summarized anyway)."""
    plan = plan_comparison(settings, budget, out)
    print(f"comparing modes ({budget.describe()}, seed {settings.run.seed}): group {plan.group}", file=sys.stderr)
    done = []
    for number, leg in enumerate(plan.legs, 1):
        print(f"[{number}/{len(plan.legs)}] {leg.mode.value}: {leg.run_dir}", file=sys.stderr)
        driver = plan.driver(leg)
        driver.prepare()
        path = driver.open_log(world_size=1, backend=None)
        driver.build_trainer(on_nonfinite="stop", commands=ControlFileReader(path))
        bar = None if quiet else ProgressBar(driver.settings.run.steps)
        status = follow_run(driver, bar, PROGRAM, interrupted="interrupted")
        report_end("stopped at its budget" if driver.stopped_at_budget else status, path, bar)
        done.append(path)
        if status not in ("finished", "stopped") or (status == "stopped" and not driver.stopped_at_budget):
            _print_summary(plan.group_dir, done, plan.group)
            return 1
    _print_summary(plan.group_dir, done, plan.group)
    return 0


def _print_summary(group_dir: Path, run_dirs: list[Path], group: str) -> None:
    summary = summarize_comparison(run_dirs)
    written = write_summary(group_dir, summary, title=f"Mode comparison {group}")
    print(summary.to_markdown(), end="")
    print(f"summary: {written}", file=sys.stderr)
