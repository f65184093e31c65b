"""How much memory a training step will need, from the settings alone, and whether the machine has it.

Plain arithmetic, no torch: the settings panel checks every edit with it on the GUI thread, and
`geogui-train` checks its settings before torch is even imported. A size that cannot fit is refused
with the estimate, instead of crashing mid-run.

The estimate counts float32 bytes of
- the weights, their gradients and the two AdamW moments (4 copies of every parameter),
- the activations autograd keeps for the backward pass: per layer, per token, the residual stream,
  the norms, q/k/v, the attention output and the experts' inputs, hidden layers and outputs (the
  k routed experts in a routed pass; in `geometric` mode every token runs through all P
  presentations, so the body's activations are P times those of one pass), then the logits and
  their log-softmax,
- on MPS, the B x heads x T x T attention matrices: its attention has no fused kernel, unlike the
  CPU and CUDA ones, which keep only a row statistic.
With every ghost awake (the most a step can hold), a test holds the activation term between 0.95 and
1.25 times the bytes autograd really saves (measured: 1.02-1.05 at the default sizes), and the
parameter count exact.

Available memory: an accelerator's own budget when the caller passes it (only the training thread may
ask torch): CUDA's free device memory, or MPS's recommended maximum less what its driver holds;
otherwise the host's: MemAvailable from /proc/meminfo on Linux, else physical memory from os.sysconf
(macOS, whose GPU shares it). Where neither exists (Windows), nothing is refused.

On MPS a size is also refused when one batched matmul (`bmm`) of a step would hold more than 2**31
elements in an operand or its result: torch's MPS bmm returns silently wrong values past 2**32
(pytorch#197636), and the factor 2 is a margin.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from geogui.settings import Mode, Settings

VOCAB = 256  # byte-level tokens (geogui.engine.data.VOCAB_SIZE, which imports torch)
FLOAT_BYTES = 4
# What a training process needs besides the step itself: the interpreter, torch's libraries and
# allocator slack. Measured: an idle process with torch imported holds about 300-400 MB resident.
BASELINE_BYTES = 400 * 2**20
# Half of 2**32, past which torch's MPS bmm is silently wrong (pytorch#197636): a margin of 2.
MPS_BMM_LIMIT = 2**31


class MemoryEstimateError(ValueError):
    """Settings whose training step would not fit in memory; the message carries the estimate."""


@dataclass(frozen=True)
class MemoryEstimate:
    parameters: int
    weights_bytes: int  # weights + gradients + optimizer moments
    activation_bytes: int  # kept for the backward pass of one batch
    baseline_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.activation_bytes + self.baseline_bytes

    def describe(self) -> str:
        return (f"about {format_gib(self.total_bytes)} ({self.parameters:,} parameters: "
                f"{format_gib(self.weights_bytes)} with gradients and optimizer state; activations of "
                f"one batch: {format_gib(self.activation_bytes)})")


def format_gib(count: float) -> str:
    return f"{count / 2**30:.2f} GiB" if count >= 2**27 else f"{count / 2**20:.0f} MiB"


def parameter_count(settings: Settings) -> int:
    """Model and rotator parameters, exactly as `MoETransformer` and `DataRotator` build them."""
    m = settings.model
    d, h, n = m.d_model, m.expert_hidden, m.presentations
    per_layer = (
        2 * d  # attention norm
        + d * 3 * d + 3 * d  # qkv
        + d * d + d  # output projection
        + 2 * d  # feed-forward norm
        + d * n  # router
        + n * (d * h + h + h * d + d)  # experts
    )
    embeddings = VOCAB * d + m.seq_len * d
    head = 2 * d + VOCAB * d  # final norm + LM head
    rotator = n * m.rotation_dimensions
    return embeddings + m.n_layers * per_layer + head + rotator


def activation_floats(settings: Settings, mode: Mode, device_type: str = "cpu") -> int:
    m, run = settings.model, settings.run
    d, h, k, n = m.d_model, m.expert_hidden, m.top_k, m.presentations
    tokens = run.batch_size * m.seq_len
    if mode is Mode.GEOMETRIC:
        # Every presentation runs the whole body, forced to one expert, whose input the norm already
        # holds: the expert adds its two hidden layers.
        copies = n
        per_token_layer = 8 * d + 2 * h
        head = copies * 2 * d + 2 * d + VOCAB  # norms of P hidden states, their mean, log-softmax
        extra = copies * 3 * d  # rotated embeddings and the Gram/norm terms' inputs
    else:
        copies = 1
        per_token_layer = 9 * d + 3 * n + k * (2 * d + 2 * h + d)
        head = 2 * d + VOCAB  # final norm; the log-softmax of the logits
        extra = d
    body = copies * m.n_layers * per_token_layer
    attention = 0
    if device_type == "mps":
        attention = copies * m.n_layers * run.batch_size * m.n_heads * m.seq_len * m.seq_len * 2
    return tokens * (body + head + extra) + attention


def estimate(settings: Settings, mode: Mode | None = None, device_type: str = "cpu") -> MemoryEstimate:
    """The memory of a step in `mode` (default: the most demanding mode the run may switch to).

    The mode can change mid-run, and `geometric` needs P times the activations of the others, so
    the default is the larger of the two."""
    params = parameter_count(settings)
    if mode is None:
        floats = max(activation_floats(settings, each, device_type) for each in (Mode.STANDARD, Mode.GEOMETRIC))
    else:
        floats = activation_floats(settings, mode, device_type)
    return MemoryEstimate(params, 4 * params * FLOAT_BYTES, floats * FLOAT_BYTES, BASELINE_BYTES)


def host_available_bytes() -> int | None:
    """Memory the OS can give this process now (Linux), or the machine's physical memory elsewhere."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


@dataclass(frozen=True)
class BatchedMatmul:
    """One `bmm` (or `baddbmm`) of a training step on MPS and the largest of its operands and result."""
    elements: int
    what: str  # the tensor and its sizes, for the message
    lower: str  # the settings that shrink it


def mps_batched_matmuls(settings: Settings, mode: Mode) -> list[BatchedMatmul]:
    """The batched matmuls a step in `mode` runs on MPS (the backward pass runs the same sizes again).

    - Attention: no fused kernel on MPS, so the B x heads x T x T scores are a bmm's result, and the
      next bmm's operand. In geometric mode a pass holds `presentation_chunk` presentations' batches.
    - Geometric mode's experts: one baddbmm over the presentations of a pass, (B*T) x D into
      (B*T) x expert_hidden and back.
    - Geometric mode's Gram matrix of the P final hidden states: an einsum, i.e. a bmm over the
      B*T tokens whose operand holds all P x B x T x D states (it is not chunked).
    The routed experts use 2-D matmuls, which this limit does not concern."""
    m, run = settings.model, settings.run
    batch, time, heads, d, h, n = run.batch_size, m.seq_len, m.n_heads, m.d_model, m.expert_hidden, m.presentations
    tokens = batch * time
    if mode is not Mode.GEOMETRIC:
        return [BatchedMatmul(batch * heads * time * time,
                              f"attention scores: batch {batch} x {heads} heads x {time} x {time} positions",
                              "the batch size, sequence length or attention heads")]
    per_pass = min(m.presentation_chunk or n, n)
    widest, wide_name = (h, "expert hidden size") if h >= d else (d, "model width")
    matmuls = [
        BatchedMatmul(per_pass * batch * heads * time * time,
                      f"attention scores: {per_pass} presentations x batch {batch} x {heads} heads x {time} x "
                      f"{time} positions",
                      "the batch size, sequence length, attention heads or presentations per pass"),
        BatchedMatmul(per_pass * tokens * widest,
                      f"geometric experts: {per_pass} presentations x batch {batch} x {time} positions x "
                      f"{wide_name} {widest}",
                      f"the batch size, sequence length, {wide_name} or presentations per pass"),
    ]
    if n > 1:
        matmuls.append(BatchedMatmul(n * tokens * d, f"Gram matrix of the hidden states: {n} presentations x batch "
                                     f"{batch} x {time} positions x model width {d}",
                                     "the batch size, sequence length or model width"))
    return matmuls


def largest_mps_bmm(settings: Settings, mode: Mode | None = None) -> BatchedMatmul:
    """The largest batched matmul of a step on MPS in `mode` (default: of every mode the run may switch to)."""
    modes = (Mode.STANDARD, Mode.GEOMETRIC) if mode is None else (mode,)
    return max((each for m in modes for each in mps_batched_matmuls(settings, m)), key=lambda b: b.elements)


def largest_mps_bmm_elements(settings: Settings, mode: Mode | None = None) -> int:
    return largest_mps_bmm(settings, mode).elements


def check_mps_bmm(settings: Settings) -> str | None:
    """None when every batched matmul of a step stays within MPS_BMM_LIMIT elements, else one line
    naming the largest and the settings to lower."""
    largest = largest_mps_bmm(settings)
    if largest.elements <= MPS_BMM_LIMIT:
        return None
    return (f"too large for MPS: one batched matmul of a step would hold {largest.elements:,} elements "
            f"({largest.what}), over the 2**31 that torch's MPS matmul is trusted with (it silently computes "
            f"wrong values past 2**32). Lower {largest.lower}")


def check_fits(settings: Settings, available_bytes: int | None = None,
               device_type: str | None = None) -> str | None:
    """None when a step fits in memory (and, on MPS, within its bmm limit), else one line with the
    estimate and what is available.

    `available_bytes` defaults to the host's (see module docstring); the training thread passes the
    budget of the accelerator it chose instead. `device_type` defaults to "mps" for the MPS setting
    and "cpu" otherwise, `auto` included: whether auto will get MPS only torch can tell, and this
    runs where torch may not be imported, so the training thread checks again on the device it got."""
    if device_type is None:
        device_type = "mps" if settings.device.device == "mps" else "cpu"
    if device_type == "mps":
        problem = check_mps_bmm(settings)
        if problem:
            return problem
    available = host_available_bytes() if available_bytes is None else available_bytes
    if available is None:
        return None
    needed = estimate(settings, device_type=device_type)
    if needed.total_bytes <= available:
        return None
    return (f"would not fit in memory: a training step needs {needed.describe()}, but only "
            f"{format_gib(available)} is available. Lower the batch size, sequence length or model size")


def refuse_if_too_big(settings: Settings, available_bytes: int | None = None,
                      device_type: str | None = None) -> None:
    """`check_fits`, raising MemoryEstimateError with its message."""
    problem = check_fits(settings, available_bytes, device_type)
    if problem:
        raise MemoryEstimateError(problem)
