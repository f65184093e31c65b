"""The two optional ways of running a training step's loss: under bf16 autocast, and compiled.

Both are off by default (`DeviceSettings.precision`, `DeviceSettings.compile_step`): on the CPU
neither pays (see the README), and each changes the arithmetic a little, so a run must ask for it.
Neither ever stops a run: bf16 where it would not help or cannot work, and a compilation that
fails, both leave the step in fp32 / eager, with a one-line notice for the user.

The caller enters the autocast context around the loss computation only; the backward pass runs
outside it, as autocast's backward ops take the dtypes their forward ops chose.
"""

from __future__ import annotations

import contextlib
import functools
import time
import warnings
from dataclasses import dataclass
from typing import Callable, ContextManager, Literal

import torch

from geogui.engine.modes import LossTerms, compute_terms
from geogui.settings import Mode

Precision = Literal["fp32", "bf16"]
AutocastFactory = Callable[[], ContextManager]
TermsFunction = Callable[..., LossTerms]  # (mode, model, rotator, x, y, weights, chunk) -> LossTerms

# The RunEvent kind under which the trainer reports `autocast_for`'s notice.
PRECISION_FALLBACK = "precision_fallback"
# Measured with the default settings, 2 threads: the geometric step took 475-497 ms under bf16
# autocast against 402 ms in fp32 (and 569 against 506 ms in a second measurement). A CPU
# without bf16 matrix units gains nothing from the narrow type and pays for every cast, so bf16
# is refused there rather than measured at each start.
CPU_BF16_NOTICE = ("bf16 was requested, but bf16 autocast measured slower than fp32 on the CPU "
                   "(the casts cost more than the narrower arithmetic saves): training in fp32")


def autocast_for(device: torch.device, precision: str) -> tuple[AutocastFactory, str | None]:
    """The context to run a step's loss under on `device`, and a notice when the precision asked
    for is not the one used (None when it is).

    fp32 and any fallback give `contextlib.nullcontext`; bf16 on CUDA and MPS gives
    `torch.autocast(device.type, dtype=torch.bfloat16)`. The loss terms may then come out in
    bfloat16: callers read them with `.float()` (as `LossTerms.stacked` does)."""
    if precision == "fp32":
        return contextlib.nullcontext, None
    if precision != "bf16":
        raise ValueError(f"unknown precision {precision!r} (expected 'fp32' or 'bf16')")
    if device.type == "cpu":
        return contextlib.nullcontext, CPU_BF16_NOTICE
    reason = _bf16_unavailable(device)
    if reason is not None:
        return contextlib.nullcontext, f"bf16 was requested, but {reason}: training in fp32"
    return functools.partial(torch.autocast, device.type, dtype=torch.bfloat16), None


def _bf16_unavailable(device: torch.device) -> str | None:
    """Why bf16 autocast would not help or not work on `device`; None when it is fine."""
    if device.type not in ("cuda", "mps"):
        return f"bf16 autocast is not supported on {device.type}"
    if device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        # Emulated bf16 (before Ampere) runs, but slower than fp32.
        return f"{torch.cuda.get_device_name(device)} has no native bf16"
    # MPS needs macOS 14 for bf16; where it is missing, autocast warns and disables itself, so
    # the probe checks what a matmul really returns.
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with torch.autocast(device.type, dtype=torch.bfloat16):
                ones = torch.ones(2, 2, device=device)
                dtype = (ones @ ones).dtype
    except (RuntimeError, TypeError, ValueError) as exc:
        return f"bf16 autocast failed on {device.type} ({_first_line(exc)})"
    if dtype != torch.bfloat16:
        said = f": {_first_line(caught[0].message)}" if caught else ""
        return f"autocast on {device.type} did not compute in bf16{said}"
    return None


@dataclass(frozen=True)
class CompileEvent:
    """Something the trainer reports as `RunEvent(step, kind, message)`."""

    kind: Literal["step_compiled", "step_recompiled", "compile_failed"]
    message: str
    seconds: float  # wall time of the call that compiled (or failed to)


# Every mode, and every ghost wake-up (see CompiledTerms), adds a compiled variant of the same
# function; dynamo's own limit (8) would be reached within a run and then run it eagerly without
# a word. This bound only stops a runaway.
RECOMPILE_LIMIT = 64


class CompiledTerms:
    """`terms_fn` (signature of `geogui.engine.modes.compute_terms`) run through `torch.compile`.

    Each mode is compiled on its first call in that mode. That call is timed: its wall time is
    dynamo's tracing, the forward *and* backward graphs' compilation (the backward is lowered
    with the forward instead of on the first backward pass, so that its failure is caught here
    too and its time counted) and one forward pass; on a GPU the launched work is not waited
    for, so compilation is nearly all of it. Later recompilations are timed and reported alike.

    A call that raises is re-run eagerly, so the step is not lost; if that succeeds, the compiler
    was at fault and the mode stays eager for good. An error the eager call raises too (out of
    memory, say) is the step's own: it reaches the caller, and the mode stays compiled.

    Recompilations to expect: the model keeps host-side state that the forward pass reads (each
    MoE layer's live-expert list, cached index tensors), which dynamo guards on. It changes when a
    ghost expert wakes, and the next step recompiles. `dynamic=None` (dynamo's default) rather
    than False: the CPU's gather dispatch gives each expert a data-dependent number of tokens, and
    a steered penalty weight is a new float; static shapes would recompile for each new value.

    Use it for training steps only: under `torch.no_grad` every mode compiles a second graph."""

    def __init__(self, terms_fn: TermsFunction = compute_terms, *, backend: str | Callable = "inductor",
                 dynamic: bool | None = None) -> None:
        import torch._dynamo  # noqa: F401 - loaded on use: importing it costs seconds at start-up
        import torch._functorch.config  # noqa: F401

        self._terms_fn = terms_fn
        self._compiled = torch.compile(terms_fn, backend=backend, dynamic=dynamic)
        self._compiled_modes: set[Mode] = set()
        self._eager_modes: set[Mode] = set()
        self._events: list[CompileEvent] = []

    def __call__(self, mode: Mode, model, rotator, x, y, weights, chunk: int = 0) -> LossTerms:
        if mode in self._eager_modes:
            return self._terms_fn(mode, model, rotator, x, y, weights, chunk)
        graphs = _graphs_compiled()
        started = time.perf_counter()
        try:
            with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT), \
                    torch._functorch.config.patch(force_non_lazy_backward_lowering=True):
                terms = self._compiled(mode, model, rotator, x, y, weights, chunk)
        except Exception as exc:  # noqa: BLE001 - any failure of the compiler must leave training going
            seconds = time.perf_counter() - started
            terms = self._terms_fn(mode, model, rotator, x, y, weights, chunk)
            self._eager_modes.add(mode)
            self._events.append(CompileEvent(
                "compile_failed",
                f"compiling the {_name(mode)} step failed ({_cause(exc)}); "
                "it runs uncompiled from now on", seconds))
            return terms
        seconds = time.perf_counter() - started
        if mode not in self._compiled_modes:
            self._compiled_modes.add(mode)
            self._events.append(CompileEvent("step_compiled", f"compiled the {_name(mode)} step in {seconds:.1f} s",
                                             seconds))
        elif _graphs_compiled() > graphs:
            self._events.append(CompileEvent("step_recompiled",
                                             f"recompiled the {_name(mode)} step in {seconds:.1f} s", seconds))
        return terms

    def take_events(self) -> list[CompileEvent]:
        """The events since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def is_compiled(self, mode: Mode) -> bool:
        """Whether `mode` has run compiled (and not fallen back to eager)."""
        return mode in self._compiled_modes and mode not in self._eager_modes


def _graphs_compiled() -> int:
    # Dynamo's count of graphs handed to a backend: it grows only when a call compiled something.
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


def _name(mode: Mode) -> str:
    return mode.label.lower()


def _cause(exc: BaseException) -> str:
    """The error that made a compilation fail, in one line: dynamo wraps a backend's own error."""
    inner = getattr(exc, "inner_exception", None) or exc.__cause__
    if isinstance(inner, BaseException) and inner is not exc:
        exc = inner
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(message: object) -> str:
    lines = str(message).strip().splitlines()
    return lines[0] if lines else ""
