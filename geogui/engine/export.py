"""Export a run directory: CSV (one row per batch), JSONL (a copy of the run), a summary, and
TensorBoard event files (`tensorboard_export`, an optional extra).

The CSV is plain RFC 4180 (csv module, header row, '.' decimals, empty cells for missing values), so
it opens in a spreadsheet and in pandas.read_csv. Angles are flattened to angle_p{p}_d{i}, expert
loads to load_<expert>, ghost activations to ghost_<ghost>; the eval loss sits on the rows of the
steps where an evaluation ran.
"""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path
from typing import Any

from geogui.engine.runlog import effective_status, read_meta, read_run_records

SCALAR_COLUMNS = (
    "step", "epoch", "mode", "penalty_weight", "batch_time_s", "data_time_s", "loss", "task_loss", "aux_loss",
    "penalty", "orthogonality", "specialization", "lr_model", "lr_rotation", "saturation", "tokens_per_s",
    "tokens_seen", "memory_bytes", "driver_memory_bytes", "wall_time_s",
)
FORMATS = ("csv", "jsonl", "json", "md", "tensorboard")


class ExportError(ValueError):
    """The export could not be written; the message names the target and the reason."""


def _expert_names(meta: dict[str, Any]) -> tuple[list[str], list[str]]:
    model = meta["settings"]["model"]
    primary = [f"E{i}" for i in range(model["num_experts"])]
    ghosts = [f"G{i}" for i in range(model["num_ghost_experts"])]
    return primary + ghosts, ghosts


def csv_table(run_dir: Path) -> tuple[list[str], list[list[Any]]]:
    meta = read_meta(run_dir)
    model = meta["settings"]["model"]
    presentations = model["num_experts"] + model["num_ghost_experts"]
    experts, ghosts = _expert_names(meta)
    angle_columns = [f"angle_p{p}_d{i}" for p in range(presentations) for i in range(model["rotation_dimensions"])]
    header = [*SCALAR_COLUMNS, "eval_loss", *angle_columns, *(f"load_{e}" for e in experts),
              *(f"ghost_{g}" for g in ghosts)]
    records = read_run_records(run_dir)
    evals = {r["step"]: r["loss"] for r in records if r.get("kind") == "eval"}
    rows = []
    for record in records:
        if record.get("kind") != "batch":
            continue
        angles = record.get("rotation_angles")
        flat_angles = [a for row in angles for a in row] if angles else [None] * len(angle_columns)
        rows.append([
            *(record.get(column) for column in SCALAR_COLUMNS), evals.get(record["step"]), *flat_angles,
            *record.get("expert_load", [None] * len(experts)), *record.get("ghost_activation", [None] * len(ghosts)),
        ])
    return header, rows


def _open_for_writing(out: Path):
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        return open(out, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise ExportError(f"{out}: cannot write ({exc.strerror or exc})") from None


def write_csv(run_dir: Path, out: Path) -> int:
    header, rows = csv_table(run_dir)
    with _open_for_writing(out) as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(["" if value is None else value for value in row] for row in rows)
    return len(rows)


def write_jsonl(run_dir: Path, out: Path) -> int:
    """The run as it stands after resumes (superseded records dropped), one JSON object per line."""
    records = read_run_records(run_dir)
    with _open_for_writing(out) as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return len(records)


def run_summary(run_dir: Path) -> dict[str, Any]:
    meta = read_meta(run_dir)
    records = read_run_records(run_dir)
    batches = [r for r in records if r.get("kind") == "batch"]
    evals = [r for r in records if r.get("kind") == "eval" and r.get("loss") is not None]
    by_mode: dict[str, list[float]] = {}
    for record in batches:
        by_mode.setdefault(record["mode"], []).append(record["batch_time_s"])
    median = {mode: statistics.median(times) for mode, times in by_mode.items()}
    ratio = ({mode: value / median["standard"] for mode, value in median.items()} if "standard" in median else {})
    best = min(evals, key=lambda r: r["loss"]) if evals else None
    return {
        "run": meta.get("name", Path(run_dir).name),
        "status": effective_status(meta),
        "device": meta.get("device"),
        "steps": batches[-1]["step"] if batches else 0,
        "batches_per_mode": {mode: len(times) for mode, times in by_mode.items()},
        "median_batch_time_s": median,
        "ratio_to_standard": ratio,
        "final_eval_loss": evals[-1]["loss"] if evals else None,
        "final_eval_step": evals[-1]["step"] if evals else None,
        "best_eval_loss": best["loss"] if best else None,
        "best_eval_step": best["step"] if best else None,
        "final_loss": batches[-1]["loss"] if batches else None,
    }


def summary_markdown(summary: dict[str, Any]) -> str:
    lines = [f"# Run {summary['run']}", "", f"- status: {summary['status']}", f"- device: {summary['device']}",
             f"- steps: {summary['steps']}"]
    if summary["final_eval_loss"] is not None:
        lines += [f"- final eval loss: {summary['final_eval_loss']:.4f} (step {summary['final_eval_step']})",
                  f"- best eval loss: {summary['best_eval_loss']:.4f} (step {summary['best_eval_step']})"]
    lines += ["", "| mode | batches | median batch time (ms) | × standard |", "|---|---:|---:|---:|"]
    for mode, seconds in summary["median_batch_time_s"].items():
        ratio = summary["ratio_to_standard"].get(mode)
        lines.append(f"| {mode} | {summary['batches_per_mode'][mode]} | {seconds * 1e3:.1f} | "
                     f"{'' if ratio is None else f'{ratio:.2f}'} |")
    return "\n".join(lines) + "\n"


def write_summary(run_dir: Path, out: Path, fmt: str = "md") -> None:
    summary = run_summary(run_dir)
    text = json.dumps(summary, indent=2) + "\n" if fmt == "json" else summary_markdown(summary)
    with _open_for_writing(out) as handle:
        handle.write(text)


def export_run(run_dir: Path, out: Path, fmt: str | None = None) -> str:
    """Write `run_dir` to `out` in `fmt` (default: from the suffix). Returns a one-line report."""
    fmt = fmt or Path(out).suffix.lstrip(".").lower()
    if fmt == "csv":
        return f"{write_csv(run_dir, out)} batches -> {out}"
    if fmt == "jsonl":
        return f"{write_jsonl(run_dir, out)} records -> {out}"
    if fmt in ("json", "md"):
        write_summary(run_dir, out, fmt)
        return f"summary -> {out}"
    if fmt == "tensorboard":  # `out` is a log directory; needs the optional tensorboard extra
        from geogui.engine.tensorboard_export import TensorBoardUnavailable, write_tensorboard

        try:
            return write_tensorboard(run_dir, out)
        except TensorBoardUnavailable as exc:
            raise ExportError(str(exc)) from None
    raise ExportError(f"{out}: unknown export format {fmt!r}; use a suffix {', '.join('.' + f for f in FORMATS[:-1])}"
                      " or --format tensorboard")
