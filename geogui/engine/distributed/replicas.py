"""What the training loop asks of its replicas, and the single-process answer.

The trainer draws batches, computes losses, back-propagates and reports through a `Replicas` object.
In one process every call is the plain operation. Under torchrun `geogui.engine.distributed.ddp` answers
the same calls across ranks (sharded batches, DistributedDataParallel, means over ranks), so the loop
itself reads the same either way, and a single-process run never touches torch.distributed.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from geogui.engine.data import get_batch
from geogui.engine.model import MoETransformer
from geogui.engine.modes import LossTerms, LossWeights, compute_terms
from geogui.engine.rotation import DataRotator
from geogui.settings import Mode


class Replicas(Protocol):
    rank: int
    world_size: int

    def batch(self, tokens: torch.Tensor, batch_size: int, seq_len: int,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's `batch_size` sequences of the global batch of `batch_size * world_size`."""

    def loss_terms(self, mode: Mode, model: MoETransformer, rotator: DataRotator, x: torch.Tensor,
                   y: torch.Tensor, weights: LossWeights, chunk: int) -> LossTerms: ...

    def backward(self, loss: torch.Tensor) -> None:
        """Gradients of the global mean loss in every parameter's .grad, on every rank."""

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of `values` (a 1-D tensor)."""

    def slowest(self, *seconds: float) -> tuple[float, ...]:
        """The largest value over ranks of each duration: the slowest rank sets the pace."""

    def share(self, obj: Any) -> Any:
        """Rank 0's `obj`, on every rank."""


class SingleProcess:
    """The whole batch in this process: every operation is the plain one."""

    rank = 0
    world_size = 1

    def batch(self, tokens, batch_size, seq_len, generator):
        return get_batch(tokens, batch_size, seq_len, generator)

    def loss_terms(self, mode, model, rotator, x, y, weights, chunk):
        return compute_terms(mode, model, rotator, x, y, weights, chunk)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def slowest(self, *seconds: float) -> tuple[float, ...]:
        return seconds

    def share(self, obj: Any) -> Any:
        return obj
