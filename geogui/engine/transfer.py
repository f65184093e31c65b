"""Moving a step's data between the host and the device, safely and as rarely as possible.

Into the device: a batch is made on the host and copied without blocking the host where that is
safe. On CUDA it is pinned first (torch's pinned-memory allocator keeps the buffer until the copy
is done). On MPS a non-blocking copy from a host tensor that is freed before the queue drains can
deliver wrong values (pytorch#139550, #189690), so a `StagedBatch` keeps its host tensors until the
caller releases it, after the step's record transfer has drained the queue.

Out of the device: every number a step reports is packed into one float32 tensor, laid out by name
(`PackedLayout`), and copied once (`to_host`). MPS has no float64: the widening to float64 happens on
the host, in numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

import numpy as np
import torch

T = TypeVar("T")


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


class PackedLayout(Generic[T]):
    """Where each named value lies in one flat float32 tensor, so that a step's numbers reach the
    host in one copy and come back by name, as a `result` (a dataclass whose fields are the names).

    Built once from (name, shape) pairs; a field of shape () comes back as a float, any other as a
    float64 array of its shape."""

    def __init__(self, result: Callable[..., T], fields: Sequence[tuple[str, tuple[int, ...]]]):
        self._result = result
        self.shapes = {name: tuple(shape) for name, shape in fields}
        self._slices: dict[str, slice] = {}
        start = 0
        for name, shape in self.shapes.items():
            self._slices[name] = slice(start, start + math.prod(shape))
            start += math.prod(shape)
        self.width = start

    def pack(self, **parts: torch.Tensor) -> torch.Tensor:
        """The parts, on the device, as one float32 tensor in the layout's order. Runs of scalars
        become one stack: every op here is a launch on a GPU."""
        if parts.keys() != self.shapes.keys():
            raise ValueError(f"expected the parts {list(self.shapes)}, got {list(parts)}")
        pieces: list[torch.Tensor] = []
        scalars: list[torch.Tensor] = []
        with torch.no_grad():  # no graph, so no detach op per part
            for name, shape in self.shapes.items():
                part = parts[name].float()  # bfloat16 under autocast
                if tuple(part.shape) != shape:
                    raise ValueError(f"{name}: expected shape {shape}, got {tuple(part.shape)}")
                if part.dim() == 0:
                    scalars.append(part)
                    continue
                if scalars:
                    pieces.append(torch.stack(scalars))
                    scalars = []
                pieces.append(part if part.dim() == 1 else part.reshape(-1))
            if scalars:
                pieces.append(torch.stack(scalars))
            return torch.cat(pieces)

    def span(self, first: str, last: str) -> slice:
        """The positions of the fields from `first` to `last`, in the layout's order."""
        return slice(self._slices[first].start, self._slices[last].stop)

    def unpack(self, values: np.ndarray) -> T:
        """The host copy of a packed tensor (see `to_host`), split by name."""
        if values.shape != (self.width,):
            raise ValueError(f"expected {self.width} packed values, got shape {values.shape}")
        return self._result(**{
            name: float(values[self._slices[name].start]) if shape == () else values[self._slices[name]].reshape(shape)
            for name, shape in self.shapes.items()
        })


def to_host(packed: torch.Tensor) -> np.ndarray:
    """A device tensor as a float64 host array: a copy that waits for everything queued before it."""
    return packed.to("cpu", copy=True).numpy().astype(np.float64)
