"""geogui-train: the same trainer as the app, headless. Settings in, run directory out."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from pydantic import ValidationError

from geogui.cli import torchrun
from geogui.cli.terminal import InputError, ProgressBar, follow_run, report_end, report_error
from geogui.engine.control_file import ControlFileReader
from geogui.rundir.driver import AT_END, FINISHED, ResumePlan, RunDriver, RunRefused, plan_resume
from geogui.settings import Mode, Settings, SettingsError, describe_validation_error, load_settings_file

PROGRAM = "geogui-train"
# The flags that choose settings: a resumed run keeps its own, so none of them goes with --resume.
SETTINGS_FLAGS = ("mode", "penalty_weight", "batch_size", "seed", "data", "device", "settings", "out")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Train the GCL Mixture-of-Experts language model headless."
    )
    parser.add_argument("--mode", choices=[m.value for m in Mode], help="training mode")
    parser.add_argument("--penalty-weight", type=float, metavar="W", help="rotation penalty weight")
    parser.add_argument("--steps", type=int, metavar="N", help="number of training batches")
    parser.add_argument("--batch-size", type=int, metavar="B", help="sequences per batch")
    parser.add_argument("--out", type=Path, metavar="DIR", help="run directory (default: a new one in the runs folder)")
    parser.add_argument("--data", type=Path, metavar="PATH", help=".txt, .json or .jsonl training data")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="device (default auto)")
    parser.add_argument("--seed", type=int, metavar="S", help="random seed")
    parser.add_argument("--settings", type=Path, metavar="FILE", help="settings JSON (the app's format)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue RUN_DIR from its latest checkpoint; --steps then means N more steps")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--collective-timeout", type=float, default=600.0, metavar="S",
                        help="under torchrun: seconds a rank waits for the others before the run fails "
                             "(default 600)")
    parser.add_argument("--tensorboard", type=Path, metavar="LOGDIR",
                        help="also write TensorBoard event files to LOGDIR/<run name> while training "
                             '(needs the extra: pip install "geogui[tensorboard]")')
    comparison = parser.add_argument_group("compare modes")
    comparison.add_argument("--compare-modes", action="store_true",
                            help="train standard, geometric_fast and geometric in turn from the same initial weights "
                                 "and seed, as three runs of one group, then print a summary table")
    comparison.add_argument("--equal", choices=["steps", "time"], default="steps",
                            help="compare at equal steps (--steps each) or equal wall time (--budget-seconds each, "
                                 "--steps the upper bound); default steps")
    comparison.add_argument("--budget-seconds", type=float, metavar="S", help="wall time per mode with --equal time")
    return parser


def resolve_settings(args: argparse.Namespace) -> Settings:
    """The settings file (strict), then the command-line flags over it, validated as one."""
    raw: dict[str, Any] = json.loads(load_settings_file(args.settings).model_dump_json()) if args.settings else {}
    overrides = {
        ("run", "mode"): args.mode, ("run", "penalty_weight"): args.penalty_weight, ("run", "steps"): args.steps,
        ("run", "batch_size"): args.batch_size, ("run", "seed"): args.seed,
        ("data", "path"): str(args.data) if args.data else None, ("device", "device"): args.device,
    }
    for (section, key), value in overrides.items():
        if value is not None:
            raw.setdefault(section, {})[key] = value
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc)) from None


def plan_from_args(args: argparse.Namespace) -> ResumePlan:
    """--resume RUN_DIR [--steps N]: the run's own settings, N more steps (default: to its planned end)."""
    for flag in SETTINGS_FLAGS:
        if getattr(args, flag) is not None:
            raise InputError(f"--{flag.replace('_', '-')} cannot be combined with --resume: a resumed run "
                             "keeps its settings")
    return plan_resume(args.resume, more_steps=args.steps)


def train(settings: Settings, out: Path | None, quiet: bool = False, resume: ResumePlan | None = None,
          tensorboard: Path | None = None, collective_timeout_s: float = 600.0) -> int:
    """Train into `out` (a new run directory), or continue the run that `resume` plans. With
    `tensorboard`, mirror the records into LOGDIR/<run name>."""
    driver = RunDriver.resuming(resume) if resume is not None else RunDriver.new(settings, out)
    driver.prepare()  # before the run directory exists: bad data or a size that cannot fit leaves nothing
    if torchrun.launched_by_torchrun():  # one rank of a data-parallel run (torch.distributed is touched only then)
        if tensorboard is not None:
            raise InputError("--tensorboard is not available under torchrun; export the run afterwards with "
                             "geogui-export RUN_DIR --format tensorboard -o LOGDIR")
        return torchrun.train_replica(driver, quiet, collective_timeout_s)
    path = driver.open_log(world_size=1, backend=None)
    driver.build_trainer(on_nonfinite="stop", commands=ControlFileReader(path))  # geogui-control steers it
    bar = None if quiet else ProgressBar(driver.settings.run.steps, start=driver.start_step)
    mirror = _tensorboard_mirror(tensorboard, path, driver.settings) if tensorboard is not None else None
    try:
        status = follow_run(driver, bar, PROGRAM, mirror)
    finally:
        if mirror is not None:
            mirror.close()
    report_end(status, path, bar)
    return 0 if status in ("finished", "stopped") else 1


def _tensorboard_mirror(logdir: Path, run_path: Path, settings: Settings):
    # The extra is optional: imported only when asked for.
    from geogui.rundir.export.tensorboard import TensorBoardMirror

    mirror = TensorBoardMirror(logdir / run_path.name, json.loads(settings.model_dump_json()))
    print(f"TensorBoard: tensorboard --logdir {logdir}", file=sys.stderr)
    return mirror


def refusal(exc: Exception) -> str:
    """The one line for input that cannot be trained, with the way on where there is one."""
    if isinstance(exc, RunRefused) and exc.reason in (FINISHED, AT_END):
        return f"{exc}; pass --steps N for N more"
    return str(exc)


def _check_tensorboard(logdir: Path) -> None:
    from geogui.rundir.export.tensorboard import INSTALL_HINT, tensorboard_available

    if not tensorboard_available():
        raise InputError(f"--tensorboard: {INSTALL_HINT}")
    try:  # before the run directory exists: an unwritable LOGDIR leaves nothing behind
        logdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--tensorboard {logdir}: cannot write ({exc.strerror or exc})") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.tensorboard is not None:
            _check_tensorboard(args.tensorboard)
        if args.resume is not None and args.compare_modes:
            raise InputError("--compare-modes makes new runs; it cannot be combined with --resume")
        if args.resume is not None:
            plan = plan_from_args(args)
            return train(plan.settings, plan.run_dir, args.quiet, resume=plan, tensorboard=args.tensorboard,
                         collective_timeout_s=args.collective_timeout)
        settings = resolve_settings(args)
        if args.compare_modes:
            return _compare_modes(args, settings)
        return train(settings, args.out, args.quiet, tensorboard=args.tensorboard,
                     collective_timeout_s=args.collective_timeout)
    except (InputError, SettingsError, RunRefused) as exc:
        report_error(PROGRAM, refusal(exc))
        return 2


def _compare_modes(args: argparse.Namespace, settings: Settings) -> int:
    from geogui.cli.compare_modes import budget_from_args, compare_modes

    if args.tensorboard is not None or args.mode is not None:
        raise InputError("--compare-modes trains every mode; it takes neither --mode nor --tensorboard")
    return compare_modes(settings, budget_from_args(args.equal, args.budget_seconds, settings.run.steps), args.out,
                         args.quiet)


if __name__ == "__main__":
    raise SystemExit(main())
