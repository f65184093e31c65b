"""geogui-export: a run directory as CSV, JSONL, a summary or TensorBoard event files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from geogui.rundir.export.samples_table import SAMPLES_FORMAT
from geogui.rundir.export.tables import FORMATS, ExportError, export_run
from geogui.rundir.runlog import RunLogError


def main(argv: Sequence[str] | None = None) -> int:
    """geogui-export RUN_DIR -o OUT: CSV, JSONL, or a summary (.md / .json), chosen by OUT's suffix;
    with --format tensorboard, OUT is a log directory that receives TensorBoard event files; with
    --samples, OUT is a CSV of the samples the model wrote during training."""
    parser = argparse.ArgumentParser(prog="geogui-export", description=main.__doc__)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
    parser.add_argument("--format", choices=FORMATS, help="override the format taken from OUT's suffix")
    parser.add_argument("--samples", action="store_true",
                        help="write the samples taken during training (CSV: step, mode, answer, prompt, text)")
    args = parser.parse_args(argv)
    if args.samples and args.format:
        parser.error("--samples cannot be combined with --format")
    try:
        print(export_run(args.run_dir, args.output, SAMPLES_FORMAT if args.samples else args.format))
    except (ExportError, RunLogError) as exc:
        print(f"geogui-export: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"geogui-export: error: {exc.filename}: missing", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
