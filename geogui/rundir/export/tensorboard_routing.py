"""The per-layer routing numbers of each batch as TensorBoard tags (`RoutingTags`), and the heatmap
images made of them (`RoutingImages`); `tensorboard` writes both. Nothing here imports tensorboard.

Scalars, at each batch that has them (routing is forced in `geometric`, so it has none of the
routing ones; only `geometric` has the similarity):
- `routing_entropy/layer<l>` and `routing_overflow/layer<l>`;
- `routing_utilization/layer<l>/<expert>`: no point while the expert is a dormant ghost (it could not
  be chosen; the record holds NaN), so a ghost's chart starts where it woke;
- `geometric/hidden_similarity_mean`: the mean off-diagonal |cos| of the presentations' hidden
  states (the orthogonality term before its weight).
Every value is as the log keeps it (3 decimals, `as_logged`), the live writer's too.
TensorBoard's scalar dashboard groups charts by a tag's first component: each kind of number is a
group of its own (4 entropy charts, 4 overflow charts, 32 utilization charts at the defaults),
rather than one `routing/` group of 40 where the few per-layer curves sit among the 32.

Images (`routing/utilization_heatmap`: layers x experts; `geometric/hidden_similarity_heatmap`:
presentations x presentations): each one the mean, cell by cell, over the batches since the
previous image, made every `image_interval` steps (the run's planned steps / IMAGES_PER_RUN) and at
the end of what is written, so a run has about IMAGES_PER_RUN of each, whatever its length: 100
(one per 1,000 steps) for a 100,000-step run, under 1 KB each. A cell averages only the batches
that had a value there (a ghost, from when it woke); a cell without any is grey. The live writer
and the export of the finished run make the same images. Colours: `heatmap_png`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from geogui.engine.log_lines import ROUTING_DECIMALS
from geogui.engine.metrics import BatchRecord
from geogui.rundir.export.heatmap_png import FRACTION, UTILIZATION, ColourScale, heatmap_rgb
from geogui.rundir.export.names import presentation_names
from geogui.settings import ModelSettings

ENTROPY_TAG = "routing_entropy/layer{layer}"
OVERFLOW_TAG = "routing_overflow/layer{layer}"
UTILIZATION_TAG = "routing_utilization/layer{layer}/{expert}"
SIMILARITY_MEAN_TAG = "geometric/hidden_similarity_mean"
UTILIZATION_IMAGE_TAG = "routing/utilization_heatmap"
SIMILARITY_IMAGE_TAG = "geometric/hidden_similarity_heatmap"
IMAGES_PER_RUN = 100


def image_interval(total_steps: int) -> int:
    """Steps between two images of a run planned for `total_steps`."""
    return max(1, math.ceil(total_steps / IMAGES_PER_RUN))


def planned_steps(settings: dict[str, Any]) -> int:
    """The run's steps as meta.json's settings hold them; the default's 500 when they do not."""
    steps = (settings.get("run") or {}).get("steps")
    return steps if isinstance(steps, int) and steps > 0 else 500


def as_logged(values: np.ndarray) -> np.ndarray:
    """A routing matrix as metrics.jsonl keeps it (ROUTING_DECIMALS): the live writer's values are the
    trainer's, an export's are read back from the log, and both must write the same points."""
    return np.round(np.asarray(values, dtype=np.float64), ROUTING_DECIMALS)


def off_diagonal_mean(similarity: np.ndarray) -> float:
    """The mean of a (P, P) matrix's off-diagonal cells (NaN for P < 2)."""
    size = len(similarity)
    if size < 2:
        return math.nan
    return float((similarity.sum() - np.trace(similarity)) / (size * (size - 1)))


class RoutingTags:
    """The scalar tags of `model`'s shape, and a batch's (tag, value) pairs."""

    def __init__(self, model: ModelSettings) -> None:
        layers = range(model.n_layers)
        self.entropy = [ENTROPY_TAG.format(layer=layer) for layer in layers]
        self.overflow = [OVERFLOW_TAG.format(layer=layer) for layer in layers]
        self.utilization = [[UTILIZATION_TAG.format(layer=layer, expert=name) for name in model.expert_names]
                            for layer in layers]

    def scalars(self, record: BatchRecord) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        for tags, values in ((self.entropy, record.routing_entropy), (self.overflow, record.layer_overflow)):
            if values is not None:
                out.extend(zip(tags, as_logged(values).tolist()))
        if record.expert_utilization is not None:
            for tags, row in zip(self.utilization, as_logged(record.expert_utilization).tolist()):
                out.extend((tag, value) for tag, value in zip(tags, row) if not math.isnan(value))
        if record.hidden_similarity is not None:
            out.append((SIMILARITY_MEAN_TAG, off_diagonal_mean(as_logged(record.hidden_similarity))))
        return out


class IntervalMean:
    """The cell-by-cell mean of the matrices added since the last `take`, over the finite values."""

    def __init__(self) -> None:
        self._sum: np.ndarray | None = None
        self._count: np.ndarray | None = None

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(values)
        if self._sum is None or self._sum.shape != values.shape:  # a new shape starts afresh
            self._sum, self._count = np.zeros(values.shape), np.zeros(values.shape, dtype=np.int64)
        self._sum += np.where(finite, values, 0.0)
        self._count += finite

    def take(self) -> np.ndarray | None:
        """The mean (NaN where no value came), or None when nothing was added; then starts again."""
        if self._sum is None:
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(self._count > 0, self._sum / np.maximum(self._count, 1), np.nan)
        self._sum = self._count = None
        return mean


@dataclass(frozen=True)
class HeatmapPicture:
    tag: str
    step: int
    values: np.ndarray  # (rows, cols) the cells' means
    rgb: np.ndarray  # (H, W, 3) uint8
    description: str  # shown by TensorBoard next to the image: what its rows, columns and colours are


class RoutingImages:
    """Collects each batch's utilization and similarity and says when an image is due."""

    def __init__(self, model: ModelSettings, total_steps: int) -> None:
        self.interval = image_interval(total_steps)
        self._utilization, self._similarity = IntervalMean(), IntervalMean()
        self._last_step: int | None = None
        names = presentation_names(model)
        self._utilization_text = _description(
            "Expert utilization (the expert's routed slots over its fair share), mean over the steps since the "
            f"previous image. Rows: layer 0 (top) … {model.n_layers - 1}; columns: {' '.join(model.expert_names)}.",
            UTILIZATION, "0 dead (blue), 1 the fair share (pale), 2 and over (red); grey: a dormant ghost")
        self._similarity_text = _description(
            "Mean |cos| of the presentations' final hidden states, mean over the geometric steps since the "
            f"previous image. Rows and columns: {' '.join(names)}.", FRACTION, "0 (dark) … 1 (bright)")

    def add(self, record: BatchRecord) -> list[HeatmapPicture]:
        """Take one batch's matrices; the images due at its step (none, or one per kind it had)."""
        if record.expert_utilization is not None:
            self._utilization.add(as_logged(record.expert_utilization))
        if record.hidden_similarity is not None:
            self._similarity.add(as_logged(record.hidden_similarity))
        self._last_step = record.step
        return self._pictures(record.step) if record.step % self.interval == 0 else []

    def finish(self) -> list[HeatmapPicture]:
        """The images of the batches added since the last ones, at the last batch's step."""
        return [] if self._last_step is None else self._pictures(self._last_step)

    def _pictures(self, step: int) -> list[HeatmapPicture]:
        out = []
        for tag, mean, scale, text in ((UTILIZATION_IMAGE_TAG, self._utilization, UTILIZATION, self._utilization_text),
                                       (SIMILARITY_IMAGE_TAG, self._similarity, FRACTION, self._similarity_text)):
            values = mean.take()
            if values is not None:
                out.append(HeatmapPicture(tag, step, values, heatmap_rgb(values, scale), text))
        return out


def _description(what: str, scale: ColourScale, colours: str) -> str:
    return f"{what} Colour: {scale.name}, {scale.low:g} … {scale.high:g}: {colours}."
