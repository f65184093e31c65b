"""A run as TensorBoard event files, written by the `tensorboard` package's own writer.

Optional: `pip install "geogui[tensorboard]"`. Without it nothing here imports tensorboard, and
`require_tensorboard` says how to install it.

One writer serves both uses: `write_tensorboard` replays a finished (or crashed, or live) run
directory, and `TensorBoardMirror` is fed the trainer's records as `geogui-train --tensorboard`
trains. Either way a run becomes LOGDIR/<run name>/, so several runs written to one LOGDIR appear
side by side in `tensorboard --logdir LOGDIR`. Each record becomes, at its step:

- scalars: `loss/*` (total and every term), `time/*`, `lr/*`, `throughput/tokens_per_s`,
  `memory/bytes`, `rotation/penalty_weight`, `experts/saturation`, `progress/epoch`;
  `angles/<expert>_d{i}` (batches that have angles; the presentation named by the expert it is
  forced to, as on the plots), `experts/load_<expert>`,
  `experts/ghost_activation_<ghost>`; `eval/loss` and `eval/perplexity`; `eval/accuracy` (the
  share of held-out answers right, 0 … 1) where the run measured it; the per-layer routing numbers
  `routing_entropy/layer<l>`, `routing_overflow/layer<l>`, `routing_utilization/layer<l>/<expert>`
  and, in geometric, `geometric/hidden_similarity_mean` (`tensorboard_routing`);
- images `routing/utilization_heatmap` (layers x experts) and, in geometric,
  `geometric/hidden_similarity_heatmap`: about 100 a run, each the mean since the one before
  (`tensorboard_routing.RoutingImages`);
- a text event `mode_changes` per mode or penalty-weight change, `dead_experts` per notice that an
  expert got no token for a while, and `samples/text` per sample the model wrote (its mode, prompt
  and text; whether its answer was right);
- the settings, flattened to `section.field`, as hparams.

TensorBoard stores scalars as float32; a value that was not finite (null in metrics.jsonl) is
written as NaN, so every record keeps its point (a dormant ghost's utilization, which could not
be measured, has none). A batch's scalars are the values of one event.
"""

from __future__ import annotations

import importlib.util
import json
import math
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from geogui.engine.metrics import BatchRecord, EvalRecord, EventKind, LoggedRecord, ModeChange, RunEvent
from geogui.rundir.export.errors import ExportError
from geogui.rundir.export.heatmap_png import png_bytes
from geogui.rundir.export.names import angle_names
from geogui.rundir.export.tensorboard_routing import HeatmapPicture, RoutingImages, RoutingTags, planned_steps
from geogui.rundir.meta import RunMeta, model_settings_of, read_meta
from geogui.engine.samples import AccuracyRecord, SampleRecord
from geogui.rundir.reader import read_records
from geogui.rundir.samples import read_samples
from geogui.settings import ModelSettings

INSTALL_HINT = 'TensorBoard support is an optional extra: pip install "geogui[tensorboard]"'

# BatchRecord field -> scalar tag.
BATCH_SCALARS = {
    "loss": "loss/total", "task_loss": "loss/task", "aux_loss": "loss/aux", "penalty": "loss/penalty",
    "orthogonality": "loss/orthogonality", "specialization": "loss/specialization",
    "batch_time_s": "time/batch_s", "data_time_s": "time/data_s",
    "lr_model": "lr/model", "lr_rotation": "lr/rotation", "tokens_per_s": "throughput/tokens_per_s",
    "memory_bytes": "memory/bytes", "driver_memory_bytes": "memory/driver_bytes", "penalty_weight": "rotation/penalty_weight",
    "saturation": "experts/saturation", "epoch": "progress/epoch",
}
EVAL_SCALARS = {"loss": "eval/loss", "perplexity": "eval/perplexity"}
MODE_CHANGE_TAG = "mode_changes"
DEAD_EXPERT_TAG = "dead_experts"
ACCURACY_TAG = "eval/accuracy"
SAMPLE_TAG = "samples/text"
HPARAM_METRICS = ("loss/total", "eval/loss")  # what the HParams dashboard lists next to the settings


class TensorBoardUnavailable(RuntimeError):
    """The optional tensorboard package is not installed; the message says how to install it."""


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def require_tensorboard() -> None:
    if not tensorboard_available():
        raise TensorBoardUnavailable(INSTALL_HINT)


def angle_tags(model: ModelSettings) -> list[str]:
    """One tag per rotation angle, presentation-major as the records hold them: angles/E0_d0, …"""
    return [f"angles/{name}" for name in angle_names(model)]


def flat_hparams(settings: dict[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """Nested settings as `section.field` -> a value TensorBoard's hparams accept."""
    out: dict[str, bool | int | float | str] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_hparams(value, name + "."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:  # None, lists: shown as their JSON text
            out[name] = json.dumps(value)
    return out


def expert_names(settings: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(all experts, ghosts) of settings as meta.json holds them (`ModelSettings.expert_names`)."""
    model = model_settings_of(settings)
    names = model.expert_names
    return names, names[model.num_experts:]


class TensorBoardMirror:
    """Writes one run's records into `logdir` as they come; `close()` ends the run's session.
    `settings` are as meta.json holds them (`RunMeta.settings`): they become the hparams.
    `total_steps` (default: the settings' steps) spaces the heatmap images."""

    def __init__(self, logdir: Path, settings: dict[str, Any], flush_secs: int = 5,
                 total_steps: int | None = None) -> None:
        require_tensorboard()
        from tensorboard.compat.proto.summary_pb2 import Summary
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        self.logdir = Path(logdir)
        self._experts, self._ghosts = expert_names(settings)
        model = model_settings_of(settings)
        self._angle_tags = angle_tags(model)
        self._routing = RoutingTags(model)
        self._images = RoutingImages(model, total_steps or planned_steps(settings))
        self._writer = SummaryWriter(log_dir=str(self.logdir), flush_secs=flush_secs)
        experiment, session_start, self._session_end = hparams(flat_hparams(settings),
                                                               {tag: math.nan for tag in HPARAM_METRICS})
        self._writer.file_writer.add_summary(experiment)
        self._writer.file_writer.add_summary(session_start)
        self._walltime: float | None = None  # of the last batch: evaluations and mode changes share it
        self._summary, self._value = Summary, Summary.Value

    def write(self, record: LoggedRecord | SampleRecord, walltime: float | None = None) -> None:
        """Add one record (other kinds than batches, evaluations, accuracies, samples, mode
        changes and dead-expert notices are ignored).
        `walltime` (seconds since the epoch) defaults to now."""
        if isinstance(record, BatchRecord):
            self._walltime = time.time() if walltime is None else walltime
            self._batch(record, self._walltime)
        elif isinstance(record, EvalRecord):
            wall = self._wall(walltime)
            for field, tag in EVAL_SCALARS.items():
                self._writer.add_scalar(tag, getattr(record, field), record.step, walltime=wall)
        elif isinstance(record, AccuracyRecord):
            self._writer.add_scalar(ACCURACY_TAG, record.fraction, record.step, walltime=self._wall(walltime))
        elif isinstance(record, SampleRecord):
            self._writer.add_text(SAMPLE_TAG, sample_markdown(record), record.step, walltime=self._wall(walltime))
        elif isinstance(record, ModeChange):
            text = f"step {record.step}: {record.previous_mode} → {record.mode}"
            if record.penalty_weight != record.previous_penalty_weight:
                text += f", penalty weight {record.previous_penalty_weight:g} → {record.penalty_weight:g}"
            self._writer.add_text(MODE_CHANGE_TAG, text, record.step, walltime=self._wall(walltime))
        elif isinstance(record, RunEvent) and record.event == EventKind.EXPERT_DEAD:
            self._writer.add_text(DEAD_EXPERT_TAG, f"step {record.step}: {record.message}", record.step,
                                  walltime=self._wall(walltime))

    def _wall(self, walltime: float | None) -> float:
        if walltime is not None:
            return walltime
        return self._walltime if self._walltime is not None else time.time()

    def _batch(self, record: BatchRecord, wall: float) -> None:
        # One event holds all of the batch's scalars (about 110 at the defaults): the writer's
        # thread takes events one by one, and an event per scalar (add_scalar) made it the export's
        # bottleneck, 6 ms a batch. TensorBoard reads each value of an event as its tag's point.
        values = [(tag, getattr(record, field)) for field, tag in BATCH_SCALARS.items()]
        if record.rotation_angles is not None:
            values += zip(self._angle_tags, record.rotation_angles.ravel().tolist())
        values += ((f"experts/load_{name}", load) for name, load in zip(self._experts, record.expert_load.tolist()))
        values += ((f"experts/ghost_activation_{name}", activation)
                   for name, activation in zip(self._ghosts, record.ghost_activation.tolist()))
        values += self._routing.scalars(record)
        summary = self._summary(value=[self._value(tag=tag, simple_value=float(value)) for tag, value in values])
        self._writer.file_writer.add_summary(summary, record.step, wall)
        for picture in self._images.add(record):
            self._image(picture, wall)

    def _image(self, picture: HeatmapPicture, wall: float) -> None:
        # In the image plugin's own form (a [width, height, PNG] string tensor), as TensorBoard
        # converts the writer's older image summary to on reading: so the description (what the
        # rows, columns and colours are) goes with it. The PNG is made here (`heatmap_png`): the
        # writer's add_image would need PIL.
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
        from tensorboard.compat.proto.types_pb2 import DT_STRING
        from tensorboard.plugins.image.metadata import create_summary_metadata

        height, width, _ = picture.rgb.shape
        tensor = TensorProto(dtype=DT_STRING, tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=3)]),
                             string_val=[str(width).encode(), str(height).encode(), png_bytes(picture.rgb)])
        metadata = create_summary_metadata(display_name=picture.tag, description=picture.description)
        value = Summary.Value(tag=picture.tag, metadata=metadata, tensor=tensor)
        self._writer.file_writer.add_summary(Summary(value=[value]), picture.step, wall)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        for picture in self._images.finish():  # the stretch since the last image
            self._image(picture, self._wall(None))
        self._writer.file_writer.add_summary(self._session_end)
        self._writer.close()


def sample_markdown(sample: SampleRecord) -> str:
    """A sample as TensorBoard's text dashboard shows it (Markdown): prompt and text as code."""
    verdict = "" if sample.right is None else \
        f", answer {'right' if sample.right else 'wrong'} (expected `{sample.expected}`)"
    return (f"step {sample.step}, {sample.mode}, temperature {sample.temperature:g}{verdict}\n\n"
            f"```\n{sample.prompt}{sample.text}\n```")


def _start_epoch(meta: RunMeta) -> float:
    try:
        return datetime.fromisoformat(meta.started_at).timestamp()
    except ValueError:
        return time.time()


def has_event_files(directory: Path) -> bool:
    return Path(directory).is_dir() and any(Path(directory).glob("events.out.tfevents.*"))


def write_tensorboard(run_dir: Path, logdir: Path) -> str:
    """Write `run_dir` as event files in LOGDIR/<run name>/. Returns a one-line report.

    Raises TensorBoardUnavailable without the extra, and ExportError when the target already holds
    event files (writing again would duplicate every point) or cannot be written."""
    require_tensorboard()
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    target = Path(logdir) / (meta.name or run_dir.name)
    if has_event_files(target):
        raise ExportError(f"{target}: already holds TensorBoard event files; choose another LOGDIR or remove them")
    records = read_records(run_dir)
    # The images as the live writer spaced them; a run logged past its plan still gets about 100.
    last_step = max((record.step for record in records if isinstance(record, BatchRecord)), default=0)
    try:
        mirror = TensorBoardMirror(target, meta.settings, total_steps=max(meta.planned_steps or 0, last_step))
    except ValueError as exc:
        raise ExportError(f"{run_dir / 'meta.json'}: no usable model settings ({' '.join(str(exc).split())})") \
            from None
    except OSError as exc:
        raise ExportError(f"{target}: cannot write ({exc.strerror or exc})") from None
    # The run's own clock, carried on across continuations (each process starts it again at 0).
    start, offset, previous = _start_epoch(meta), 0.0, 0.0
    batches = 0
    walls: dict[int, float] = {}
    try:
        for record in records:
            if isinstance(record, BatchRecord):
                if record.wall_time_s < previous:
                    offset += previous
                previous = record.wall_time_s
                walls[record.step] = start + offset + record.wall_time_s
                mirror.write(record, walls[record.step])
                batches += 1
            else:  # evaluations and mode changes take the time of the batch before them
                mirror.write(record, None if batches else start)
        for sample in read_samples(run_dir):  # at the time of its step's batch
            mirror.write(sample, walls.get(sample.step, start))
    finally:
        mirror.close()
    return f"{batches} batches -> {target}"
