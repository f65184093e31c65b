"""Device choice and honest timing: auto -> MPS, then CUDA, then CPU; a failing device falls back to CPU
visibly (the caller is given the reason to show)."""

from __future__ import annotations

import os
import resource
import sys
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    requested: str
    fallback_reason: str | None = None  # set when the requested device could not be used


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def _probe(device: torch.device) -> None:
    """Run a tiny op on the device so that a broken driver fails here, not mid-run."""
    a = torch.ones(8, 8, device=device)
    (a @ a).sum().item()


def choose_device(requested: str) -> DeviceChoice:
    if requested == "auto":
        if _mps_available():
            candidate = "mps"
        elif torch.cuda.is_available():
            candidate = "cuda"
        else:
            return DeviceChoice(torch.device("cpu"), requested)
    else:
        candidate = requested
    if candidate == "cpu":
        return DeviceChoice(torch.device("cpu"), requested)
    available = _mps_available() if candidate == "mps" else torch.cuda.is_available()
    if not available:
        return DeviceChoice(torch.device("cpu"), requested, f"{candidate} is not available on this machine; using CPU")
    device = torch.device(candidate)
    try:
        _probe(device)
    except Exception as exc:  # a driver or runtime failure: say it and carry on on the CPU
        return DeviceChoice(torch.device("cpu"), requested, f"{candidate} failed ({exc}); using CPU")
    return DeviceChoice(device, requested)


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so that the clock read after it measures the work, not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def free_memory_bytes(device: torch.device) -> int | None:
    """Free memory of a CUDA device; None for the others, whose memory is the host's."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
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
