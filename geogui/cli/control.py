"""geogui-control: steer a run that another process is training, through its control file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from pydantic import ValidationError

from geogui.engine.control_file import (
    ControlError,
    Pause,
    Resume,
    SetMode,
    SetPenaltyWeight,
    Stop,
    append_command,
    describe,
)
from geogui.rundir.runlog import RunLogError, effective_status, read_meta
from geogui.settings import Mode, describe_validation_error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="geogui-control", description=main.__doc__)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--pause", action="store_true", help="pause after the current batch")
    what.add_argument("--resume", action="store_true", help="resume a paused run")
    what.add_argument("--stop", action="store_true", help="stop after the current batch (status stopped)")
    what.add_argument("--mode", choices=[m.value for m in Mode], help="switch the training mode")
    what.add_argument("--penalty-weight", type=float, metavar="W", help="set the rotation penalty weight")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """geogui-control RUN_DIR --pause | --resume | --stop | --mode M | --penalty-weight W: append one
    validated command to the run's control file; the trainer applies it between two batches."""
    args = build_parser().parse_args(argv)
    try:
        if args.mode is not None:
            command = SetMode(mode=args.mode)
        elif args.penalty_weight is not None:
            command = SetPenaltyWeight(penalty_weight=args.penalty_weight)
        else:
            command = Pause() if args.pause else Resume() if args.resume else Stop()
    except ValidationError as exc:
        print(f"geogui-control: error: {describe_validation_error(exc)}", file=sys.stderr)
        return 2
    try:
        status = effective_status(read_meta(args.run_dir))
        if status != "running":
            raise ControlError(f"{args.run_dir}: the run is {status}; nothing reads its commands any more")
        path = append_command(args.run_dir, command)
    except (RunLogError, ControlError, OSError) as exc:
        print(f"geogui-control: error: {exc}", file=sys.stderr)
        return 2
    print(f"{describe(command)}: written to {path}; the trainer applies it between two batches")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
