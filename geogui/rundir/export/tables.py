"""Export a run directory: CSV (one row per batch), JSONL (a copy of the run), a summary, and
TensorBoard event files (`tensorboard_export`, an optional extra).

The CSV is plain RFC 4180 (csv module, header row, '.' decimals, empty cells for missing values), so
it opens in a spreadsheet and in pandas.read_csv. Angles are flattened to angle_<expert>_d{i} (the
expert each presentation is forced to, as the plots name it: angle_E0_d0 … angle_G3_d3), expert
loads to load_<expert>, ghost activations to ghost_<ghost>; the eval loss sits on the rows of the
steps where an evaluation ran, and so does `accuracy` (the share of held-out answers right, 0 … 1),
a column only runs that measured it have. `--samples` writes the run's samples.jsonl as a CSV
(`samples_table`).

The per-layer routing numbers come last (`routing_header`), in this order: `util_l<layer>_<expert>`
(utilization, layer-major: util_l0_E0 … util_l0_G3, util_l1_E0, …), `entropy_l<layer>`,
`overflow_l<layer>`, then `hsim_<p>_<q>`, the presentations' hidden similarity, only for p < q
(hsim_E0_E1, hsim_E0_E2, … hsim_G2_G3, row by row): the matrix is symmetric with 1 on its diagonal.
Their cells are empty where a batch has no such number: routing in `geometric` (forced) and in runs
logged before it was measured, a dormant ghost's utilization, the similarity outside `geometric`.
The log keeps them to 3 decimals (`log_lines.ROUTING_DECIMALS`), and so does the CSV.
The summary gives, per MoE layer, the mean routing entropy and overflow and the experts reported
dead, and per geometric segment the mean off-diagonal hidden similarity (`routing_summary`).

The CSV and the summary are made from the run's columns (`reader.read_columns`: a few hundred bytes per
batch, read from the cache the log keeps), not from a dict per batch: the app exports the run it is
training, and a dict per batch (4.5 KB) for a run of 200,000 batches would be most of a gigabyte
that the allocator keeps once it is freed. The columns hold the loads and ghost activations in
float32, which is the precision the log writes them with; a run logged before that wrote more digits,
and its CSV now shows 7 significant ones.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from geogui.engine.log_lines import DEVICE_FLOAT32
from geogui.rundir.columns import MATRIX_FIELDS, RunColumns
from geogui.rundir.export.errors import ExportError
from geogui.rundir.export.names import angle_names, similarity_names, similarity_pairs, utilization_names
from geogui.rundir.export.routing_summary import routing_summary, routing_summary_lines
from geogui.rundir.export.samples_table import SAMPLES_FORMAT, accuracy_summary, accuracy_summary_lines, write_samples
from geogui.rundir.export.tensorboard import TensorBoardUnavailable, write_tensorboard
from geogui.rundir.meta import RunMeta, read_meta
from geogui.rundir.reader import read_columns, read_lines
from geogui.settings import ModelSettings

SCALAR_COLUMNS = (
    "step", "epoch", "mode", "penalty_weight", "batch_time_s", "data_time_s", "loss", "task_loss", "aux_loss",
    "penalty", "orthogonality", "specialization", "lr_model", "lr_rotation", "saturation", "tokens_per_s",
    "tokens_seen", "memory_bytes", "driver_memory_bytes", "wall_time_s",
)
FORMATS = ("csv", "jsonl", "json", "md", "tensorboard")
CSV_CHUNK_ROWS = 1024
__all__ = ["FORMATS", "SCALAR_COLUMNS", "ExportError", "csv_header", "csv_rows", "export_run", "run_summary",
           "summary_markdown", "write_csv", "write_jsonl", "write_summary"]


def _names(model: ModelSettings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(every expert, the ghosts)."""
    names = model.expert_names
    return names, names[model.num_experts:]


def csv_header(model: ModelSettings, accuracy: bool = False) -> list[str]:
    """The columns; `accuracy` for a run that measured it (`RunColumns.accuracies`)."""
    experts, ghosts = _names(model)
    angle_columns = [f"angle_{name}" for name in angle_names(model)]
    return [*SCALAR_COLUMNS, "eval_loss", *(["accuracy"] if accuracy else []), *angle_columns,
            *(f"load_{e}" for e in experts), *(f"ghost_{g}" for g in ghosts), *routing_header(model)]


def routing_header(model: ModelSettings) -> list[str]:
    """The per-layer routing columns, in the order the CSV has them (see the module docstring)."""
    layers = range(model.n_layers)
    return [*(f"util_{name}" for name in utilization_names(model)), *(f"entropy_l{layer}" for layer in layers),
            *(f"overflow_l{layer}" for layer in layers), *(f"hsim_{name}" for name in similarity_names(model))]


def _cells(values: np.ndarray) -> list:
    return [None if value != value else value for value in values.tolist()]  # NaN: not finite, an empty cell


def _float32_cells(matrix: np.ndarray, widened: bool) -> list[list]:
    """Rows of a float32 matrix as the values a metrics line reads back to: the angles, computed in
    float32, as the float64 they widen to; the host's values as the decimal that was written."""
    if widened:
        return [_cells(row) for row in matrix.astype(np.float64)]
    return [[None if text == "nan" else float(text) for text in row] for row in matrix.astype(str)]


def csv_rows(model: ModelSettings, columns: RunColumns) -> Iterator[list[Any]]:
    """One row per batch, made CSV_CHUNK_ROWS at a time from the run's columns: an export holds the
    columns (a few hundred bytes a batch) and one chunk of rows, never a Python object per batch."""
    matrices = [_fit(getattr(columns, name), width) for name, width in zip(MATRIX_FIELDS, matrix_widths(model))]
    upper = [p * model.presentations + q for p, q in similarity_pairs(model)]
    matrices[MATRIX_FIELDS.index("hidden_similarity")] = matrices[MATRIX_FIELDS.index("hidden_similarity")][:, upper]
    eval_loss = dict(zip(columns.eval_step.tolist(), _cells(columns.eval_loss)))
    accuracy = dict(zip(columns.accuracy_step.tolist(), _cells(columns.accuracy)))
    accuracy_cells = (lambda step: [accuracy.get(step)]) if columns.accuracies else (lambda step: [])
    scalars = [name for name in SCALAR_COLUMNS if name != "mode"]
    for start in range(0, len(columns), CSV_CHUNK_ROWS):
        rows = slice(start, start + CSV_CHUNK_ROWS)
        cells = {name: _cells(getattr(columns, name)[rows]) for name in scalars}
        for name in ("step", "tokens_seen"):
            cells[name] = [None if value is None else int(value) for value in cells[name]]
        cells["mode"] = [columns.modes[code] for code in columns.mode[rows].tolist()]
        wide = [_float32_cells(matrix[rows], name in DEVICE_FLOAT32) for matrix, name in zip(matrices, MATRIX_FIELDS)]
        for i, step in enumerate(cells["step"]):
            yield [*(cells[name][i] for name in SCALAR_COLUMNS), eval_loss.get(step), *accuracy_cells(step),
                   *(cell for matrix in wide for cell in matrix[i])]


def matrix_widths(model: ModelSettings) -> tuple[int, ...]:
    """The width of each of MATRIX_FIELDS at `model`'s shape."""
    experts = len(model.expert_names)
    return (model.presentations * model.rotation_dimensions, experts, experts - model.num_experts,
            model.n_layers * experts, model.n_layers, model.n_layers, model.presentations ** 2)


def _fit(matrix: np.ndarray, width: int) -> np.ndarray:
    # A run that never had a kind of value (a standard-only run has no angles, a run logged before
    # the routing numbers has none of them) still has its columns.
    if matrix.shape[1] == width:
        return matrix
    return np.full((len(matrix), width), np.nan, dtype=np.float32)


def _open_for_writing(out: Path):
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        return open(out, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise ExportError(f"{out}: cannot write ({exc.strerror or exc})") from None


def _model(run_dir: Path, meta: RunMeta) -> ModelSettings:
    try:
        return meta.model_settings()
    except ValueError as exc:
        raise ExportError(f"{Path(run_dir) / 'meta.json'}: no usable model settings ({' '.join(str(exc).split())})") \
            from None


def write_csv(run_dir: Path, out: Path) -> int:
    model = _model(run_dir, read_meta(run_dir))
    columns = read_columns(run_dir)
    written = 0
    with _open_for_writing(out) as handle:
        writer = csv.writer(handle)
        writer.writerow(csv_header(model, accuracy=bool(columns.accuracies)))
        for row in csv_rows(model, columns):
            writer.writerow(["" if value is None else value for value in row])
            written += 1
    return written


def write_jsonl(run_dir: Path, out: Path) -> int:
    """The run as it stands after its rewinds (superseded records dropped), one JSON object per line."""
    records = read_lines(run_dir).lines
    with _open_for_writing(out) as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return len(records)


def run_summary(run_dir: Path) -> dict[str, Any]:
    meta = read_meta(run_dir)
    columns = read_columns(run_dir)
    times = columns.batch_time_s
    by_mode = {mode: times[columns.mode == code] for code, mode in enumerate(columns.modes)}
    by_mode = {mode: values for mode, values in by_mode.items() if len(values)}
    median = {mode: float(np.median(values)) for mode, values in by_mode.items()}
    ratio = ({mode: value / median["standard"] for mode, value in median.items()} if "standard" in median else {})
    evaluated = np.flatnonzero(np.isfinite(columns.eval_loss))
    final = int(evaluated[-1]) if len(evaluated) else None
    best = int(evaluated[np.argmin(columns.eval_loss[evaluated])]) if len(evaluated) else None
    last_loss = float(columns.loss[-1]) if len(columns) else math.nan
    return {
        "run": meta.name or Path(run_dir).name,
        "status": str(meta.effective_status()),
        "device": meta.device,
        "steps": int(columns.step[-1]) if len(columns) else 0,
        "batches_per_mode": {mode: len(values) for mode, values in by_mode.items()},
        "median_batch_time_s": median,
        "ratio_to_standard": ratio,
        "final_eval_loss": float(columns.eval_loss[final]) if final is not None else None,
        "final_eval_step": int(columns.eval_step[final]) if final is not None else None,
        "best_eval_loss": float(columns.eval_loss[best]) if best is not None else None,
        "best_eval_step": int(columns.eval_step[best]) if best is not None else None,
        "final_loss": last_loss if math.isfinite(last_loss) else None,
        "accuracy_per_mode": accuracy_summary(columns.accuracies),
        **routing_summary(columns),
    }


def summary_markdown(summary: dict[str, Any]) -> str:
    lines = [f"# Run {summary['run']}", "", f"- status: {summary['status']}", f"- device: {summary['device']}",
             f"- steps: {summary['steps']}"]
    if summary["final_eval_loss"] is not None:
        lines += [f"- final eval loss: {summary['final_eval_loss']:.4f} (step {summary['final_eval_step']})",
                  f"- best eval loss: {summary['best_eval_loss']:.4f} (step {summary['best_eval_step']})"]
    lines += accuracy_summary_lines(summary.get("accuracy_per_mode") or {})
    lines += ["", "| mode | batches | median batch time (ms) | × standard |", "|---|---:|---:|---:|"]
    for mode, seconds in summary["median_batch_time_s"].items():
        ratio = summary["ratio_to_standard"].get(mode)
        lines.append(f"| {mode} | {summary['batches_per_mode'][mode]} | {seconds * 1e3:.1f} | "
                     f"{'' if ratio is None else f'{ratio:.2f}'} |")
    lines += routing_summary_lines(summary)
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
    if fmt == SAMPLES_FORMAT:
        return f"{write_samples(run_dir, out)} samples -> {out}"
    if fmt in ("json", "md"):
        write_summary(run_dir, out, fmt)
        return f"summary -> {out}"
    if fmt == "tensorboard":  # `out` is a log directory; needs the optional tensorboard extra
        try:
            return write_tensorboard(run_dir, out)
        except TensorBoardUnavailable as exc:
            raise ExportError(str(exc)) from None
    raise ExportError(f"{out}: unknown export format {fmt!r}; use a suffix {', '.join('.' + f for f in FORMATS[:-1])}"
                      " or --format tensorboard")
