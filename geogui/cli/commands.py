"""geogui-train: the same trainer as the app, headless. Settings in, run directory out."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence, TextIO

from pydantic import ValidationError

from geogui.settings import Mode, Settings, SettingsError, describe_validation_error, load_settings_file


class InputError(Exception):
    """Bad input from the command line; printed as one line, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geogui-train", description="Train the GCL Mixture-of-Experts language model headless."
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


def resume_run(args: argparse.Namespace) -> int:
    """--resume RUN_DIR [--steps N]: the run's own settings, N more steps (default: to its planned end)."""
    from geogui.engine.checkpoint import CheckpointError, check_checkpoint, latest_checkpoint
    from geogui.rundir.runlog import RunLogError, effective_status, read_meta

    run_dir = args.resume
    try:
        meta = read_meta(run_dir)
    except RunLogError as exc:
        raise InputError(str(exc)) from None
    if effective_status(meta) == "running":
        raise InputError(f"{run_dir}: the run is still being written by process {meta.get('pid')}")
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise InputError(f"{run_dir}: no checkpoint to resume from")
    for flag in ("mode", "penalty_weight", "batch_size", "seed", "data", "device", "settings", "out"):
        if getattr(args, flag) is not None:
            raise InputError(f"--{flag.replace('_', '-')} cannot be combined with --resume: a resumed run "
                             "keeps its settings")
    try:
        settings = Settings.model_validate(meta["settings"])
        step = check_checkpoint(checkpoint, settings.model)
        if args.steps is not None:
            settings = settings.model_copy(update={"run": settings.run.model_copy(update={"steps": step + args.steps})})
            settings = Settings.model_validate(settings.model_dump())
    except ValidationError as exc:
        raise InputError(f"{run_dir}: {describe_validation_error(exc)}") from None
    except CheckpointError as exc:
        raise InputError(str(exc)) from None
    if settings.run.steps <= step:
        raise InputError(f"{run_dir}: already at step {step} of {settings.run.steps}; pass --steps N for N more")
    return train(settings, run_dir, args.quiet, resume=(checkpoint, step), tensorboard=args.tensorboard,
                 collective_timeout_s=args.collective_timeout)


class ProgressBar:
    """A one-line terminal progress bar with ETA and loss; plain periodic lines when not a terminal."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, start: int = 0):
        self.total = total
        self.start = start
        self.stream = stream
        self.interactive = stream.isatty()
        self.started = time.monotonic()
        self._last_draw = 0.0

    def update(self, step: int, loss: float, batch_ms: float, mode: str) -> None:
        now = time.monotonic()
        if step < self.total and now - self._last_draw < (0.1 if self.interactive else 5.0):
            return
        self._last_draw = now
        elapsed = now - self.started
        eta = elapsed / max(1, step - self.start) * (self.total - step)
        width = 30
        filled = int(width * step / self.total)
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {step}/{self.total} "
                f"ETA {int(eta) // 60}:{int(eta) % 60:02d}  loss {loss:.4f}  {batch_ms:.1f} ms/batch  {mode}")
        if self.interactive:
            self.stream.write("\r" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        self.stream.write(("\n" if self.interactive else "") + text + "\n")
        self.stream.flush()


def report_event(event, run_path: Path, bar: ProgressBar | None, replicas_text: str = "") -> None:
    """What the terminal shows of one engine event; the run log has everything."""
    from geogui.engine.metrics import BatchRecord, EvalRecord, ModeChange, RunEvent, RunStarted

    if isinstance(event, RunStarted):
        print(f"run {run_path}  {replicas_text}device {event.device}  {event.parameters:,} parameters  "
              f"data: {event.data_source}", file=sys.stderr)
    elif isinstance(event, BatchRecord) and bar:
        bar.update(event.step, event.loss, event.batch_time_s * 1e3, event.mode)
    elif isinstance(event, EvalRecord) and bar:
        bar.message(f"step {event.step}: eval loss {event.loss:.4f}  perplexity {event.perplexity:.2f}")
    elif isinstance(event, (RunEvent, ModeChange)):
        text = event.message if isinstance(event, RunEvent) else f"mode -> {event.mode}"
        print(("\n" if bar and bar.interactive else "") + text, file=sys.stderr)


def train(settings: Settings, out: Path | None, quiet: bool = False,
          resume: tuple[Path, int] | None = None, tensorboard: Path | None = None,
          collective_timeout_s: float = 600.0) -> int:
    """Train into `out` (a new run directory), or, with `resume` = (checkpoint, step), continue the
    run in `out` from that checkpoint. With `tensorboard`, mirror the records into LOGDIR/<run name>."""
    # torch is imported only here, so `--help` and bad input stay instant.
    from geogui.engine.control_file import ControlFileReader
    from geogui.engine.data import DataError, load_corpus
    from geogui.engine.memory_estimate import MemoryEstimateError, refuse_if_too_big
    from geogui.engine.metrics import RunFinished
    from geogui.rundir.recorder import record_run
    from geogui.engine.trainer import Trainer

    try:  # before the run directory exists, so bad data or a size that cannot fit leaves nothing behind
        refuse_if_too_big(settings)
        corpus = load_corpus(settings.data, settings.model.seq_len)
    except (DataError, MemoryEstimateError) as exc:
        raise InputError(str(exc)) from None
    from geogui.cli.torchrun import launched_by_torchrun

    if launched_by_torchrun():  # one rank of a data-parallel run (torch.distributed is touched only then)
        from geogui.cli.torchrun import train_replica

        if tensorboard is not None:
            raise InputError("--tensorboard is not available under torchrun; export the run afterwards with "
                             "geogui-export RUN_DIR --format tensorboard -o LOGDIR")

        return train_replica(settings, out, quiet, resume, corpus, collective_timeout_s)
    if resume is not None:
        checkpoint, from_step = resume
        trainer = Trainer(settings, on_nonfinite="stop", corpus=corpus, resume_from=checkpoint)
    else:
        trainer = Trainer(settings, on_nonfinite="stop", corpus=corpus)
    log = _open_run_log(settings, out, resume)
    log.meta.update(world_size=1, backend=None)
    trainer.commands = ControlFileReader(log.path)  # geogui-control RUN_DIR steers the run through it
    bar = None if quiet else ProgressBar(settings.run.steps, start=resume[1] if resume else 0)
    mirror = None
    if tensorboard is not None:
        from geogui.rundir.export.tensorboard import TensorBoardMirror

        mirror = TensorBoardMirror(tensorboard / log.path.name, log.meta["settings"])
        print(f"TensorBoard: tensorboard --logdir {tensorboard}", file=sys.stderr)
    status = "failed"
    try:
        for event in record_run(trainer, log):
            if mirror is not None:
                mirror.write(event)
            report_event(event, log.path, bar)
            if isinstance(event, RunFinished):
                status = event.status
    except KeyboardInterrupt:
        status = "stopped"
    except Exception as exc:  # out of memory, a full disk: one line saying what was kept, no traceback
        from geogui.engine.failures import describe_failure

        message = describe_failure(exc, log.meta.get("steps_done") or 0, log.path)  # the last step logged
        if message is None:
            raise
        print(("\n" if bar and bar.interactive else "") + f"geogui-train: error: {message}", file=sys.stderr)
        status = "failed"
    finally:
        if mirror is not None:
            mirror.close()
    if bar and bar.interactive:
        print(file=sys.stderr)
    print(f"{status}: {log.path}", file=sys.stderr)
    return 0 if status in ("finished", "stopped") else 1


def _open_run_log(settings: Settings, out: Path | None, resume: tuple[Path, int] | None):
    """The run's RunLog: a new directory, or `out` continued after the checkpoint's step."""
    from geogui.rundir.runlog import RunLog, RunLogError

    try:
        if resume is not None:
            return RunLog.reopen(out, settings, resume[1])
        return RunLog(out, settings) if out else RunLog.create(settings)
    except RunLogError as exc:  # another process is writing that run
        raise InputError(str(exc)) from None
    except OSError as exc:
        where = exc.filename or out or "the runs folder"
        raise InputError(f"{where}: cannot write the run directory ({exc.strerror or exc})") from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.tensorboard is not None:
            from geogui.rundir.export.tensorboard import INSTALL_HINT, tensorboard_available

            if not tensorboard_available():
                raise InputError(f"--tensorboard: {INSTALL_HINT}")
            try:  # before the run directory exists: an unwritable LOGDIR leaves nothing behind
                args.tensorboard.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"--tensorboard {args.tensorboard}: cannot write ({exc.strerror or exc})") from None
        if args.resume is not None:
            return resume_run(args)
        settings = resolve_settings(args)
        return train(settings, args.out, args.quiet, tensorboard=args.tensorboard,
                     collective_timeout_s=args.collective_timeout)
    except (InputError, SettingsError) as exc:
        print(f"geogui-train: error: {exc}", file=sys.stderr)
        return 2


def export_main(argv: Sequence[str] | None = None) -> int:
    """geogui-export RUN_DIR -o OUT: CSV, JSONL, or a summary (.md / .json), chosen by OUT's suffix;
    with --format tensorboard, OUT is a log directory that receives TensorBoard event files."""
    from geogui.rundir.export.tables import FORMATS, ExportError, export_run
    from geogui.rundir.runlog import RunLogError

    parser = argparse.ArgumentParser(prog="geogui-export", description=export_main.__doc__)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
    parser.add_argument("--format", choices=FORMATS, help="override the format taken from OUT's suffix")
    args = parser.parse_args(argv)
    try:
        print(export_run(args.run_dir, args.output, args.format))
    except (ExportError, RunLogError) as exc:
        print(f"geogui-export: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"geogui-export: error: {exc.filename}: missing", file=sys.stderr)
        return 2
    return 0


def control_main(argv: Sequence[str] | None = None) -> int:
    """geogui-control RUN_DIR --pause | --resume | --stop | --mode M | --penalty-weight W: append one
    validated command to the run's control file; the trainer applies it between two batches."""
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

    parser = argparse.ArgumentParser(prog="geogui-control", description=control_main.__doc__)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--pause", action="store_true", help="pause after the current batch")
    what.add_argument("--resume", action="store_true", help="resume a paused run")
    what.add_argument("--stop", action="store_true", help="stop after the current batch (status stopped)")
    what.add_argument("--mode", choices=[m.value for m in Mode], help="switch the training mode")
    what.add_argument("--penalty-weight", type=float, metavar="W", help="set the rotation penalty weight")
    args = parser.parse_args(argv)
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
