"""Settings: the one schema for the app's panels, the headless trainer and the settings file.

Every field carries its bounds, a title (the panel label) and a description (the tooltip), so the
GUI builds its forms from these models and never keeps a second copy of the schema.
"""

from __future__ import annotations

import json
import math
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from geogui.settings.migrations import FIRST_VERSION, MIGRATIONS, Migration, MigrationError, migrate

# Bump it when a field is renamed, moved or changes meaning, and add the migration from the old
# version to `geogui.settings.migrations.MIGRATIONS`.
SCHEMA_VERSION = 1


class Mode(str, Enum):
    """How a batch is trained. See `geogui.engine.modes` for the exact loss of each."""

    STANDARD = "standard"
    GEOMETRIC = "geometric"
    GEOMETRIC_FAST = "geometric_fast"

    @property
    def label(self) -> str:
        return {"standard": "Standard", "geometric": "Geometric", "geometric_fast": "Geometric fast"}[self.value]

    @property
    def uses_rotator(self) -> bool:
        return self is not Mode.STANDARD


MODE_DESCRIPTIONS: dict[Mode, str] = {
    Mode.STANDARD: "One forward pass; loss = cross-entropy + router load-balancing loss. No rotator.",
    Mode.GEOMETRIC: (
        "The full GCL step: every presentation (rotated embeddings, forced to its own expert) runs "
        "through the whole model, all presentations batched into one pass. Loss = CE of the mean "
        "logits + rotation penalty + orthogonality + specialization."
    ),
    Mode.GEOMETRIC_FAST: (
        "The published fast fix: one ordinary forward pass, plus penalty_weight * mean(angles**2). "
        "The rotations do not touch the forward pass, so in this mode they are only regularised "
        "(pulled towards zero), not learned from the data."
    ),
}


class _Section(BaseModel):
    # Unknown keys are refused (a typo must not silently fall back to a default); NaN/inf are refused.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)


class RunSettings(_Section):
    mode: Mode = Field(
        Mode.GEOMETRIC_FAST, title="Mode", description="Training mode. " + " ".join(
            f"{m.label}: {d}" for m, d in MODE_DESCRIPTIONS.items()
        )
    )
    penalty_weight: float = Field(
        0.001, ge=0.0, le=100.0, title="Rotation penalty weight",
        description="Weight w of the rotation penalty w * mean(angles**2) (geometric modes).",
    )
    orthogonality_weight: float = Field(
        0.5, ge=0.0, le=100.0, title="Orthogonality weight",
        description="Weight of the mean |cosine| between presentations' final hidden states (geometric mode).",
    )
    specialization_weight: float = Field(
        0.3, ge=0.0, le=100.0, title="Specialization weight",
        description="Weight of relu(1 - variance of hidden-state norms across presentations) (geometric mode).",
    )
    steps: int = Field(500, ge=1, le=10_000_000, title="Steps", description="Number of training batches.")
    batch_size: int = Field(16, ge=1, le=4096, title="Batch size", description="Sequences per batch.")
    learning_rate: float = Field(
        3e-3, gt=0.0, le=1.0, title="Model learning rate",
        description="Peak learning rate of AdamW on the model (linear warm-up, then cosine decay).",
    )
    rotation_learning_rate: float = Field(
        1e-3, gt=0.0, le=1.0, title="Rotation learning rate",
        description="Peak learning rate of Adam on the rotator angles (cosine decay).",
    )
    weight_decay: float = Field(0.01, ge=0.0, le=1.0, title="Weight decay", description="AdamW weight decay.")
    warmup_steps: int = Field(
        20, ge=0, le=100_000, title="Warm-up steps", description="Linear learning-rate warm-up of the model optimizer."
    )
    grad_clip: float = Field(
        1.0, ge=0.0, le=1000.0, title="Gradient clip", description="Max global gradient norm (0 disables clipping)."
    )
    eval_interval: int = Field(
        50, ge=1, le=1_000_000, title="Eval every (steps)", description="Steps between held-out evaluations."
    )
    eval_batches: int = Field(
        4, ge=1, le=1000, title="Eval batches", description="Held-out batches averaged per evaluation."
    )
    checkpoint_interval: int = Field(
        100, ge=0, le=1_000_000, title="Checkpoint every (steps)",
        description="Steps between checkpoints (a checkpoint is also written when the run ends; 0 = only then).",
    )
    seed: int = Field(1337, ge=0, le=2**31 - 1, title="Seed", description="Seed for weights and batch order.")
    dead_expert_steps: int = Field(
        200, ge=0, le=1_000_000, title="Dead-expert notice after (steps)",
        description="Routed steps in a row in which an expert that can be chosen gets no token before the run "
        "says so (0 = never).",
    )


class ModelSettings(_Section):
    d_model: int = Field(128, ge=8, le=8192, title="Model width", description="Embedding / residual width d_model.")
    n_layers: int = Field(4, ge=1, le=128, title="Layers", description="Number of transformer blocks.")
    n_heads: int = Field(4, ge=1, le=128, title="Attention heads", description="Heads per attention layer.")
    seq_len: int = Field(128, ge=8, le=16384, title="Sequence length", description="Context length in bytes.")
    expert_hidden: int = Field(
        256, ge=8, le=65536, title="Expert hidden size", description="Hidden width of each expert's feed-forward net."
    )
    num_experts: int = Field(4, ge=1, le=64, title="Primary experts", description="Primary experts per MoE layer.")
    num_ghost_experts: int = Field(
        4, ge=0, le=64, title="Ghost experts",
        description="Ghost experts per MoE layer: dormant until the primary experts saturate, then ramped in.",
    )
    top_k: int = Field(2, ge=1, le=8, title="Top-k", description="Experts each token is routed to.")
    rotation_dimensions: int = Field(
        4, ge=1, le=64, title="Rotation angles",
        description="Angles per presentation; angle i rotates the channel pairs of group i.",
    )
    max_rotation: float = Field(
        2.0, gt=0.0, le=math.pi, title="Max rotation (rad)", description="angles = max_rotation * tanh(theta)."
    )
    aux_loss_weight: float = Field(
        0.01, ge=0.0, le=10.0, title="Load-balance weight", description="Weight of the router load-balancing loss."
    )
    capacity_factor: float = Field(
        1.25, gt=0.0, le=16.0, title="Expert capacity factor",
        description="An expert's capacity is capacity_factor * (routed slots / number of primary experts).",
    )
    saturation_threshold: float = Field(
        0.05, gt=0.0, le=1.0, title="Saturation threshold",
        description="Primary experts count as saturated when the smoothed fraction of routed slots over "
        "capacity exceeds this.",
    )
    ghost_patience: int = Field(
        20, ge=1, le=100_000, title="Ghost patience",
        description="Consecutive saturated steps before the next dormant ghost expert wakes.",
    )
    ghost_ramp_steps: int = Field(
        100, ge=1, le=1_000_000, title="Ghost ramp steps", description="Steps for a woken ghost to ramp from 0 to 1."
    )
    presentation_chunk: int = Field(
        0, ge=0, le=64, title="Presentations per pass",
        description="Geometric mode: presentations batched into one pass (0 = all; lower it to save memory).",
    )

    @model_validator(mode="after")
    def _shapes_fit(self) -> "ModelSettings":
        # The messages name the fields by their titles: they are shown beside the panel's labels.
        name = _titles(type(self))
        if self.d_model % self.n_heads:
            raise ValueError(f"{name['d_model']} ({self.d_model}) must be divisible by "
                             f"{name['n_heads']} ({self.n_heads})")
        if self.d_model % (2 * self.rotation_dimensions):
            raise ValueError(
                f"{name['d_model']} ({self.d_model}) must be divisible by 2 × {name['rotation_dimensions']} "
                f"({2 * self.rotation_dimensions}): each angle rotates whole channel pairs"
            )
        if self.top_k > self.num_experts:
            raise ValueError(f"{name['top_k']} ({self.top_k}) cannot exceed {name['num_experts']} "
                             f"({self.num_experts})")
        return self

    @property
    def presentations(self) -> int:
        return self.num_experts + self.num_ghost_experts

    @property
    def expert_names(self) -> tuple[str, ...]:
        """E0, E1, … for the primary experts, then G0, G1, … for the ghosts: the names every plot,
        table and export uses."""
        return expert_names(self.num_experts, self.num_ghost_experts)


def _titles(model: type[BaseModel]) -> dict[str, str]:
    return {field: info.title or field for field, info in model.model_fields.items()}


def expert_names(experts: int, ghosts: int) -> tuple[str, ...]:
    return tuple(f"E{i}" for i in range(experts)) + tuple(f"G{i}" for i in range(ghosts))


class DataSettings(_Section):
    path: Path | None = Field(
        None, title="Data file",
        description="Plain text (.txt), JSON list or JSONL of {question, reasoning, answer} records. "
        "Empty: the embedded lambda-calculus corpus.",
    )
    validation_fraction: float = Field(
        0.1, ge=0.01, le=0.5, title="Held-out fraction", description="Fraction of the corpus kept for evaluation."
    )

    @field_validator("path", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("path")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        # Resolved (~, .., symlinks) so that the run log names the file that was really read; only
        # a regular file is accepted, not a directory, a device or a pipe.
        if value is not None:
            value = value.expanduser().resolve()
            if not value.exists():
                raise ValueError(f"data file not found: {value}")
            if not value.is_file():
                raise ValueError(f"data file is not a regular file: {value}")
        return value


class DeviceSettings(_Section):
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", title="Device", description="auto picks MPS, then CUDA, then CPU. A device that fails falls back to CPU."
    )
    compile_step: bool = Field(
        False, title="Compile the step",
        description="Run each step's loss through torch.compile: fewer, fused kernels, which helps most on "
        "CUDA and MPS, where every kernel launch costs. The first step of each mode waits for the "
        "compilation (tens of seconds; again after a ghost expert wakes). If compiling fails, training "
        "goes on uncompiled.",
    )
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", title="Precision",
        description="fp32: full precision. bf16: the step's matrix products in bfloat16 (autocast), "
        "faster and lighter on CUDA and MPS GPUs with bf16 support; the weights and the loss stay fp32. "
        "On the CPU bf16 is slower, so there a bf16 run trains in fp32 and says so.",
    )


class SamplingSettings(_Section):
    """How the model writes text: samples shown during training, the answer accuracy measured at each
    evaluation, and `geogui-sample`."""

    temperature: float = Field(
        0.8, ge=0.0, le=5.0, title="Temperature",
        description="Divides the logits before sampling: lower is more predictable; 0 always takes the "
        "most likely byte (greedy).",
    )
    top_k: int = Field(
        0, ge=0, le=256, title="Top-k bytes",
        description="Sample only among the k most likely bytes (0 = all 256).",
    )
    max_bytes: int = Field(256, ge=1, le=4096, title="Sample length (bytes)", description="Bytes written per sample.")
    sample_interval: int = Field(
        500, ge=0, le=1_000_000, title="Sample every (steps)",
        description="Steps between text samples logged during training (0 = none).",
    )
    accuracy_questions: int = Field(
        16, ge=0, le=1000, title="Accuracy questions",
        description="Held-out questions the model answers (greedy) when accuracy is measured; an answer is "
        "right when it is alpha-equivalent to the reducer's normal form (0 = off; data without records has none).",
    )
    # Each answer is written byte by byte, its reasoning first: on a CPU one check costs as much as
    # a few hundred training steps, so it is made now and then, not at every evaluation.
    accuracy_interval: int = Field(
        1000, ge=0, le=1_000_000, title="Accuracy every (steps)",
        description="Steps between answer-accuracy checks, each made at the next evaluation, and at the "
        "run's last one (0 = at every evaluation).",
    )
    answer_bytes: int = Field(
        384, ge=1, le=4096, title="Answer length (bytes)",
        description="Bytes an answer may take, its reasoning and its A: line included; an answer not "
        "finished by then counts as wrong.",
    )
    prompt: str = Field(
        "", max_length=4096, title="Prompt",
        description="The text each sample continues (empty: the first held-out question).",
    )


class Settings(_Section):
    schema_version: int = Field(
        SCHEMA_VERSION, ge=FIRST_VERSION, le=SCHEMA_VERSION, title="Schema version",
        description="Settings file format version (older files are migrated when they are read).",
    )
    run: RunSettings = Field(default_factory=RunSettings, title="Run")
    model: ModelSettings = Field(default_factory=ModelSettings, title="Model")
    data: DataSettings = Field(default_factory=DataSettings, title="Data")
    device: DeviceSettings = Field(default_factory=DeviceSettings, title="Device")
    # A section added later, all defaults: files written without it load unchanged (no migration).
    sampling: SamplingSettings = Field(default_factory=SamplingSettings, title="Sampling")


class SettingsError(ValueError):
    """A settings file or value that cannot be used; the message names the field and the reason."""


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, each naming the field: 'run.batch_size: Input should be ...'."""
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(f"{where}: {message}")
    return "; ".join(lines)


def load_settings_file(path: Path, migrations: Mapping[int, Migration] = MIGRATIONS) -> Settings:
    """Read a settings JSON file strictly: any invalid value or unknown key raises SettingsError.
    A file of an older schema version is migrated; one from a newer geogui is refused."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read settings file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: settings file is not UTF-8 text") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: expected a JSON object of settings")
    try:
        migrated = migrate(raw, SCHEMA_VERSION, migrations)
    except MigrationError as exc:
        raise SettingsError(f"{path}: {exc}") from None
    if migrated.newer:
        raise SettingsError(f"{path}: written by a newer geogui (schema version {migrated.from_version}; "
                            f"this one reads up to {SCHEMA_VERSION})")
    try:
        return Settings.model_validate(migrated.raw)
    except ValidationError as exc:
        raise SettingsError(f"{path}: {describe_validation_error(exc)}") from None


def settings_to_json(settings: Settings) -> str:
    return settings.model_dump_json(indent=2)
