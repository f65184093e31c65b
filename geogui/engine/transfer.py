"""Moving a step's data between the host and the device, safely and as rarely as possible.

Into the device: a batch is made on the host and copied without blocking the host where that is
safe. On CUDA it is pinned first (torch's pinned-memory allocator keeps the buffer until the copy
is done). On MPS a non-blocking copy from a host tensor that is freed before the queue drains can
deliver wrong values (pytorch#139550, #189690), so a `StagedBatch` keeps its host tensors until the
caller releases it, after the step's record transfer has drained the queue.

Out of the device: every number a step reports is packed into one float32 tensor and copied once
(`PackedValues`). MPS has no float64: the widening to float64 happens on the host, in numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class StagedBatch:
    x: torch.Tensor  # on the device
    y: torch.Tensor
    _host: tuple[torch.Tensor, ...] = field(default=(), repr=False)

    def release(self) -> None:
        """The device has read the batch (the queue was drained since): the host copies may go."""
        self._host = ()


def stage(x: torch.Tensor, y: torch.Tensor, device: torch.device) -> StagedBatch:
    """Host tensors x, y on `device`, copied without blocking the host where that is safe."""
    if device.type == "cpu":
        return StagedBatch(x, y)
    if device.type == "cuda":
        x, y = x.pin_memory(), y.pin_memory()
        return StagedBatch(x.to(device, non_blocking=True), y.to(device, non_blocking=True))
    if device.type == "mps":
        return StagedBatch(x.to(device, non_blocking=True), y.to(device, non_blocking=True), (x, y))
    return StagedBatch(x.to(device), y.to(device))


class PackedValues:
    """Named device tensors as one flat float32 tensor, so that they reach the host in one copy."""

    def __init__(self, **parts: torch.Tensor):
        self.sizes = {name: part.numel() for name, part in parts.items()}
        self.shapes = {name: tuple(part.shape) for name, part in parts.items()}
        with torch.no_grad():  # no graph, so no detach op per part
            self.packed = torch.cat([part.float().reshape(-1) for part in parts.values()])

    def to_host(self, packed: torch.Tensor | None = None) -> dict[str, np.ndarray]:
        """Copy `packed` (default: this object's; pass a reduced copy under data parallelism) to the
        host, the one device-to-host transfer of a step, and split it by name (float64)."""
        values = (self.packed if packed is None else packed).to("cpu", copy=True).numpy().astype(np.float64)
        out, start = {}, 0
        for name, size in self.sizes.items():
            out[name] = values[start:start + size].reshape(self.shapes[name])
            start += size
        return out
