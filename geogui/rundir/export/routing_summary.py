"""What the run summary says about routing: per MoE layer, the mean routing entropy and overflow
over the batches that routed, and the experts the run reported dead; per `geometric` segment (a
stretch of consecutive geometric batches), the presentations' mean off-diagonal hidden similarity.

Made from the run's columns (`RunColumns`) like the rest of the summary: a few numpy reductions, no
object per batch. The layers are the columns' own; a run with no routed batch that measured them
(logged before they were, or all in `geometric`) has none, and the summary says nothing of routing. The dead experts come from the run's
`EventKind.EXPERT_DEAD` notices, whose message (`router_watch`) is the only place that names them;
a notice worded otherwise is kept whole, under no layer.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from geogui.engine.metrics import EventKind, RunEvent
from geogui.rundir.columns import RunColumns
from geogui.settings import Mode

# "layer 2: expert E3 has had no tokens for 200 steps", as the trainer's router watch words it.
_DEAD_NOTICE = re.compile(r"layer (\d+): expert (\S+) has had no tokens")


def dead_experts(events: list[RunEvent]) -> list[dict[str, Any]]:
    """Each EXPERT_DEAD notice as {step, layer, expert, message} (layer and expert None when the
    message does not name them), in the order logged."""
    out = []
    for event in events:
        if event.event != EventKind.EXPERT_DEAD:
            continue
        named = _DEAD_NOTICE.match(event.message)
        out.append({"step": event.step, "layer": int(named[1]) if named else None,
                    "expert": named[2] if named else None, "message": event.message})
    return out


def _column_means(matrix: np.ndarray) -> list[tuple[float | None, int]]:
    """(mean of the finite values, their count) of each column; None for a column without one."""
    finite = np.isfinite(matrix)
    counts = finite.sum(axis=0)
    sums = np.where(finite, matrix, 0).sum(axis=0, dtype=np.float64)
    return [(float(total / count) if count else None, int(count)) for total, count in zip(sums, counts)]


def off_diagonal_means(similarity: np.ndarray) -> np.ndarray:
    """(N, P * P) row-major similarity matrices -> (N,) the mean of each one's off-diagonal (the
    orthogonality term before its weight); NaN for a row without a matrix."""
    size = math.isqrt(similarity.shape[1])
    if size < 2:
        return np.full(len(similarity), np.nan)
    cells = similarity.reshape(len(similarity), size, size).astype(np.float64)
    trace = np.trace(cells, axis1=1, axis2=2)
    return (cells.sum(axis=(1, 2)) - trace) / (size * (size - 1))


def _segments(rows: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each stretch of consecutive True in `rows`."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], rows, [False]]).astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def geometric_similarity(columns: RunColumns) -> list[dict[str, Any]]:
    """Per geometric segment that measured it: its first and last step, the batches that measured
    the similarity, and the mean over them of the off-diagonal hidden similarity."""
    if Mode.GEOMETRIC.value not in columns.modes or not columns.hidden_similarity.shape[1]:
        return []
    geometric = columns.mode == columns.modes.index(Mode.GEOMETRIC.value)
    out = []
    for start, end in _segments(geometric):
        means = off_diagonal_means(columns.hidden_similarity[start:end])
        measured = means[np.isfinite(means)]
        if len(measured):
            out.append({"first_step": int(columns.step[start]), "last_step": int(columns.step[end - 1]),
                        "batches": len(measured), "mean_off_diagonal": float(measured.mean())})
    return out


def routing_summary(columns: RunColumns) -> dict[str, Any]:
    """`routing_per_layer` (layer, routed_batches, mean_entropy, mean_overflow, dead_experts: the
    names reported), `dead_experts` (every notice, `dead_experts`) and `hidden_similarity`
    (`geometric_similarity`)."""
    notices = dead_experts(columns.events)
    entropy, overflow = _column_means(columns.routing_entropy), _column_means(columns.layer_overflow)
    named_layers = [notice["layer"] for notice in notices if notice["layer"] is not None]
    measured = len(overflow) if any(count for _, count in overflow) else 0  # never routed, or not measured: none
    layers = max(measured, max(named_layers, default=-1) + 1)
    unmeasured = (None, 0)  # a layer only a notice names (the columns were not measured)
    per_layer = []
    for layer in range(layers):
        mean_entropy, _ = entropy[layer] if layer < len(entropy) else unmeasured
        # every routed batch has an overflow; an entropy only where more than one expert was routable
        mean_overflow, routed = overflow[layer] if layer < len(overflow) else unmeasured
        dead = list(dict.fromkeys(n["expert"] for n in notices if n["layer"] == layer))  # first report's order
        per_layer.append({"layer": layer, "routed_batches": routed, "mean_entropy": mean_entropy,
                          "mean_overflow": mean_overflow, "dead_experts": dead})
    return {"routing_per_layer": per_layer, "dead_experts": notices,
            "hidden_similarity": geometric_similarity(columns)}


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def routing_summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary's routing as Markdown: a table of the layers, a line per geometric segment and per
    notice that named no layer; nothing for a run without routing numbers."""
    lines: list[str] = []
    per_layer = summary.get("routing_per_layer") or []
    if per_layer:
        first_dead = {}
        for notice in summary.get("dead_experts") or []:
            first_dead.setdefault((notice["layer"], notice["expert"]), notice["step"])
        lines += ["", "| layer | routed batches | mean routing entropy | mean overflow | experts reported dead |",
                  "|---:|---:|---:|---:|---|"]
        for entry in per_layer:
            dead = ", ".join(f"{name} (step {first_dead[(entry['layer'], name)]})" for name in entry["dead_experts"])
            lines.append(f"| {entry['layer']} | {entry['routed_batches']} | {_number(entry['mean_entropy'])} | "
                         f"{_number(entry['mean_overflow'])} | {dead} |")
    unnamed = [notice for notice in summary.get("dead_experts") or [] if notice["layer"] is None]
    segments = summary.get("hidden_similarity") or []
    if unnamed or segments:
        lines.append("")
    lines += [f"- reported dead at step {notice['step']}: {notice['message']}" for notice in unnamed]
    lines += [f"- hidden similarity (mean off-diagonal |cos|), geometric steps {segment['first_step']}–"
              f"{segment['last_step']}: {segment['mean_off_diagonal']:.3f}" for segment in segments]
    return lines
