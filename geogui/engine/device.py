"""Device choice and honest timing: auto -> MPS, then CUDA, then CPU; a failing device falls back to CPU
visibly (the caller is given the reason to show).

A device is used only after it has run one tiny MoE step (routed and geometric forward, backward)
and agreed with the CPU on it: a driver that raises, or computes garbage without raising, then fails
before the run starts instead of in the middle of it.

GEOGUI_DISABLE_MPS=1 makes MPS count as not available, so that `auto` uses CUDA or the CPU and
says why. Machines that report MPS as available but cannot run it (hosted macOS CI runners,
actions/runner-images#9918) set it.
"""

from __future__ import annotations

import copy
import math
import os
import resource
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from geogui.engine.model import MoETransformer
from geogui.engine.modes import LossWeights, geometric_terms
from geogui.engine.rotation import DataRotator
from geogui.settings import ModelSettings

DISABLE_MPS_VARIABLE = "GEOGUI_DISABLE_MPS"
# float32 kernels on a GPU sum in another order than the CPU's: their rounding stays orders of
# magnitude below 1e-3 on a step this small, and a broken kernel's error does not.
PROBE_RELATIVE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    requested: str
    fallback_reason: str | None = None  # set when the requested device could not be used


def mps_disabled() -> bool:
    return os.environ.get(DISABLE_MPS_VARIABLE, "").strip() not in ("", "0")


def _mps_reported() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def _mps_available() -> bool:
    return not mps_disabled() and _mps_reported()


def mps_available() -> bool:
    """Whether `auto` would try MPS here (torch reports it, and it is not turned off)."""
    return _mps_available()


def _probe_step(device: torch.device, state: dict | None = None) -> tuple[list[float], dict]:
    """The loss and the squared gradient norm of one tiny step on `device`, read in one transfer, and
    the weights it started from (the given `state`, or freshly seeded ones)."""
    cfg = ModelSettings(d_model=16, n_layers=1, n_heads=2, seq_len=8, expert_hidden=16, num_experts=2,
                        num_ghost_experts=2, top_k=1, rotation_dimensions=2)
    vocab = 256
    with torch.random.fork_rng(devices=[]):  # the caller's random stream is left as it was
        torch.manual_seed(0)
        model = MoETransformer(cfg, vocab)
        rotator = DataRotator(cfg.presentations, cfg.rotation_dimensions, cfg.d_model, cfg.max_rotation)
        tokens = torch.randint(0, vocab, (2, cfg.seq_len + 1))
    if state is None:
        state = copy.deepcopy({"model": model.state_dict(), "rotator": rotator.state_dict()})
    else:
        model.load_state_dict(state["model"])
        rotator.load_state_dict(state["rotator"])
    model.to(device)
    rotator.to(device)
    tokens = tokens.to(device)
    x, y = tokens[:, :-1], tokens[:, 1:]
    routed = model(x)
    loss = F.cross_entropy(routed.logits.reshape(-1, vocab), y.reshape(-1)) + 0.01 * routed.aux_loss
    loss = loss + geometric_terms(model, rotator, x, y, LossWeights(0.001, 0.5, 0.3, 0.01)).loss
    loss.backward()
    grads = [p.grad for p in [*model.parameters(), *rotator.parameters()] if p.grad is not None]
    squared_norm = torch.stack([g.pow(2).sum() for g in grads]).sum()
    return torch.stack([loss.detach(), squared_norm]).tolist(), state


def _probe(device: torch.device) -> None:
    """Raise unless one tiny MoE step on `device` is finite and equal to the CPU's to 1e-3."""
    # The CPU step seeds the weights; the device starts from a copy of them.
    expected, state = _probe_step(torch.device("cpu"))
    got, _ = _probe_step(device, state)
    for name, value, reference in zip(("loss", "squared gradient norm"), got, expected):
        if not math.isfinite(value):
            raise RuntimeError(f"a test step's {name} is {value}")
        if abs(value - reference) > PROBE_RELATIVE_TOLERANCE * abs(reference):
            raise RuntimeError(f"a test step's {name} is {value:.6g}, {reference:.6g} on the CPU")


def choose_device(requested: str) -> DeviceChoice:
    if requested == "auto":
        if _mps_available():
            candidate = "mps"
        elif torch.cuda.is_available():
            candidate = "cuda"
        else:
            reason = None
            if mps_disabled() and _mps_reported():
                reason = f"mps is turned off by {DISABLE_MPS_VARIABLE}=1; using CPU"
            return DeviceChoice(torch.device("cpu"), requested, reason)
    else:
        candidate = requested
    if candidate == "cpu":
        return DeviceChoice(torch.device("cpu"), requested)
    available = _mps_available() if candidate == "mps" else torch.cuda.is_available()
    if not available:
        if candidate == "mps" and mps_disabled() and _mps_reported():
            return DeviceChoice(torch.device("cpu"), requested,
                                f"mps is turned off by {DISABLE_MPS_VARIABLE}=1; using CPU")
        return DeviceChoice(torch.device("cpu"), requested, f"{candidate} is not available on this machine; using CPU")
    device = torch.device(candidate)
    try:
        _probe(device)
    except Exception as exc:  # a driver or runtime failure: say it and carry on on the CPU
        first_line = next(iter(str(exc).strip().splitlines()), type(exc).__name__)
        return DeviceChoice(torch.device("cpu"), requested, f"{candidate} failed ({first_line}); using CPU")
    return DeviceChoice(device, requested)


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so that the clock read after it measures the work, not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def free_memory_bytes(device: torch.device) -> int | None:
    """Memory a step may still take on an accelerator; None on the CPU, whose memory is the host's.

    On MPS that is the recommended maximum less what the driver already holds: past the maximum
    macOS swaps instead of raising out-of-memory, so that is the budget, not physical memory."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "mps":
        return max(0, int(torch.mps.recommended_max_memory()) - int(torch.mps.driver_allocated_memory()))
    return None


def driver_memory_bytes(device: torch.device) -> float:
    """Memory the device's driver holds for this process: on MPS the allocator's caches and compiled
    graphs too (which `memory_bytes` leaves out), on CUDA the caching allocator's reserved bytes;
    0 on the CPU."""
    if device.type == "cuda":
        return float(torch.cuda.memory_reserved(device))
    if device.type == "mps":
        return float(torch.mps.driver_allocated_memory())
    return 0.0


def memory_bytes(device: torch.device) -> float:
    """Memory in use: allocator bytes on an accelerator; the process's resident set on CPU."""
    if device.type == "cuda":
        return float(torch.cuda.memory_allocated(device))
    if device.type == "mps":
        return float(torch.mps.current_allocated_memory())
    try:
        with open("/proc/self/statm", "rb") as statm:
            return float(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    except OSError:  # macOS and others: peak RSS is the best the standard library offers
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return float(peak if sys.platform == "darwin" else peak * 1024)
