"""Data-parallel training under torchrun: the same trainer on several processes or GPUs.

torchrun starts one process per rank and sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT; the process group is initialised from them (env://), with NCCL on CUDA and gloo on the
CPU. This module is imported only then, so a single-process run never initialises torch.distributed.

How a step stays equal to the single-process step on the whole global batch:
- Every rank draws the whole global batch (`batch_size * world_size` windows) with the shared
  batch-order generator and keeps its own slice, so a seed gives the same global batches at every
  world size.
- The loss is a mean over tokens, the shards are equal, and DistributedDataParallel averages
  gradients: the mean of the ranks' gradients is the gradient of the global mean loss.
- The router's balance loss and overflow use expert counts summed over ranks (`MoEFeedForward.
  over_ranks`), so the balance loss is the global batch's and every rank wakes the same ghosts.
- The geometric specialization term, relu(1 - mean variance), is the one exception: each rank
  applies the relu to its own shard's mean, which equals the global term while all shards are on
  the same side of the kink (they are, unless the variance of norms sits right at 1).

Parameters that a step leaves without gradients (the rotator in `standard`, the router in
`geometric`; a top-k-skipped or dormant expert is a slice of a stacked parameter, which still gets
a gradient) are handled by DDP's `find_unused_parameters=True`. A parameter unused on every rank then
keeps `grad=None`, so the optimizers skip it exactly as in one process; the measured cost is in the
README. DDP's bucketed all-reduce overlaps with the backward pass.

Failure: every collective runs under the process group's timeout. A rank that raises reports its
message to the rendezvous store and exits; rank 0 collects the reports (and checks which ranks'
processes are gone) into the run's `meta.json`. torchrun ends the other ranks with SIGTERM, which
is turned into an exception so that the run log is closed as `failed`.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import signal
import socket
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from geogui.engine.data import get_batch
from geogui.engine.model import MoETransformer
from geogui.engine.modes import LossTerms, compute_terms
from geogui.engine.rotation import DataRotator
from geogui.settings import Mode

DEFAULT_TIMEOUT_S = 600.0
_DDP_ARGUMENTS = inspect.signature(DistributedDataParallel.__init__).parameters
_FAILURE_KEY = "geogui/failure/{rank}"
_REPORT_WAIT = timedelta(seconds=2)


class ReplicaError(RuntimeError):
    """A collective failed: another rank died, hung past the timeout, or the network broke."""


class RankTerminated(RuntimeError):
    """The launcher ended this rank (SIGTERM), usually because another rank failed."""


@dataclass(frozen=True)
class RankInfo:
    rank: int
    host: str
    pid: int


class _Step(nn.Module):
    """The model and the rotator as one module whose forward is a training mode's loss, so that one
    DDP wrapper sees every parameter a step may train."""

    def __init__(self, model: MoETransformer, rotator: DataRotator):
        super().__init__()
        self.model = model
        self.rotator = rotator

    def forward(self, mode: Mode, x, y, weights, chunk: int) -> LossTerms:
        return compute_terms(mode, self.model, self.rotator, x, y, weights, chunk)


class DistributedReplicas:
    """This process's rank of a torchrun job; see the module docstring."""

    def __init__(self, device_type: str, timeout_s: float = DEFAULT_TIMEOUT_S,
                 find_unused_parameters: bool = True):
        self.rank = int(os.environ["RANK"])
        self.world_size = int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.timeout_s = timeout_s
        self.find_unused_parameters = find_unused_parameters
        self.backend = "nccl" if device_type == "cuda" else "gloo"
        if self.backend == "nccl":
            torch.cuda.set_device(self.local_rank)  # "cuda" then means this rank's own GPU
            # On a timeout, abort the communicator and raise in this process (the default kills it
            # before the run log can say what happened).
            os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "2")
        self._tensor_device = torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")
        self._ddp: DistributedDataParallel | None = None
        self._store = None
        self._terminating = False
        dist.init_process_group(self.backend, init_method="env://", timeout=timedelta(seconds=timeout_s))
        self._store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                                    timeout=timedelta(seconds=timeout_s))
        self.ranks: list[RankInfo] = self.gather(RankInfo(self.rank, socket.gethostname(), os.getpid()))

    # ---- the trainer's calls (geogui.engine.distributed.replicas.Replicas) ----
    def batch(self, tokens, batch_size, seq_len, generator):
        x, y = get_batch(tokens, batch_size * self.world_size, seq_len, generator)
        mine = slice(self.rank * batch_size, (self.rank + 1) * batch_size)
        return x[mine].contiguous(), y[mine].contiguous()

    def loss_terms(self, mode, model, rotator, x, y, weights, chunk):
        if self._ddp is None or self._ddp.module.model is not model:
            self._wrap(model, rotator)
        with self._collective("forward"):
            return self._ddp(mode, x, y, weights, chunk)

    def backward(self, loss: torch.Tensor) -> None:
        with self._collective("gradient all-reduce"):
            loss.backward()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        values = values.detach().clone()
        with self._collective("mean over ranks"):
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values / self.world_size

    def slowest(self, *seconds: float) -> tuple[float, ...]:
        values = torch.tensor(seconds, dtype=torch.float64, device=self._tensor_device)
        with self._collective("slowest rank's time"):
            dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return tuple(values.tolist())

    def share(self, obj: Any) -> Any:
        box = [obj if self.rank == 0 else None]
        with self._collective("broadcast"):
            dist.broadcast_object_list(box, src=0, device=self._tensor_device if self.backend == "nccl" else None)
        return box[0]

    # ---- MoEFeedForward.over_ranks ----
    def sum(self, counts: torch.Tensor) -> torch.Tensor:
        counts = counts.detach().clone()
        with self._collective("expert counts"):
            dist.all_reduce(counts, op=dist.ReduceOp.SUM)
        return counts

    # ---- the run's bookkeeping ----
    def gather(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world_size
        with self._collective("gather"):
            dist.all_gather_object(out, obj)
        return out

    def fingerprints(self, modules: list[nn.Module]) -> list[str]:
        """Every rank's SHA-256 of its parameters and buffers, for checking that replicas agree."""
        digest = hashlib.sha256()
        for module in modules:
            for name, value in module.state_dict().items():
                digest.update(name.encode())
                if isinstance(value, torch.Tensor):
                    digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
                else:  # a module's extra state (the ghost experts' life cycle)
                    digest.update(repr(value).encode())
        return self.gather(digest.hexdigest())

    def _wrap(self, model: MoETransformer, rotator: DataRotator) -> None:
        for layer in model.moe_layers:
            layer.over_ranks = self
        # The ghost buffers follow global counts, so they are already equal on every rank: no
        # per-forward broadcast (the keyword was renamed in torch 2.13).
        no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in _DDP_ARGUMENTS
                          else {"broadcast_buffers": False})
        self._ddp = DistributedDataParallel(
            _Step(model, rotator), device_ids=[self.local_rank] if self.backend == "nccl" else None,
            find_unused_parameters=self.find_unused_parameters, **no_buffer_sync,
        )

    @contextmanager
    def _collective(self, what: str) -> Iterator[None]:
        try:
            yield
        except (RankTerminated, ReplicaError):
            raise
        except Exception as exc:
            self._terminating = True  # from here on, SIGTERM must not interrupt closing the run log
            raise ReplicaError(f"rank {self.rank}: {what} failed: {' '.join(str(exc).split())[:400]}") from exc

    # ---- failure ----
    def install_termination_handler(self) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame) -> None:
        # Already failing (unwinding an exception, closing the log): finish that instead.
        if self._terminating or sys.exc_info()[1] is not None:
            return
        self._terminating = True
        raise RankTerminated(f"rank {self.rank} was ended by the launcher (SIGTERM)")

    def report_failure(self, message: str) -> None:
        """Leave this rank's message where rank 0 can read it, even after this process is gone."""
        try:
            self._store.set(_FAILURE_KEY.format(rank=self.rank), message)
        except Exception:  # noqa: BLE001 - the store itself may be gone; the exit status still tells
            pass

    def failure_message(self, own: BaseException) -> str:
        """What went wrong, for meta.json: the other ranks' reports, the ranks whose processes are gone,
        and this rank's own exception."""
        parts: list[str] = []
        for info in self.ranks:
            if info.rank == self.rank:
                continue
            key = _FAILURE_KEY.format(rank=info.rank)
            try:
                self._store.wait([key], _REPORT_WAIT)
                parts.append(self._store.get(key).decode("utf-8", "replace"))
                continue
            except Exception:  # noqa: BLE001 - no report (killed, or still running)
                pass
            if info.host == socket.gethostname() and not _alive(info.pid):
                parts.append(f"rank {info.rank} (pid {info.pid}) ended without a message (killed?)")
        parts.append(describe_failure(own, self.rank))
        return "; ".join(parts)

    def close(self) -> None:
        # Every rank reaches the end before any tears down: a rank that destroyed its process group
        # while a peer's gloo threads still talked to it aborted that peer ("terminate called without
        # an active exception", 3 runs in 5 of the 2-rank tests). The barrier is bounded by the
        # collective timeout, like every other collective.
        with self._collective("the closing barrier"):
            dist.barrier()
        dist.destroy_process_group()


class SharedCommands:
    """Rank 0 reads the control file; every rank gets the same commands at the same step."""

    def __init__(self, reader, replicas: DistributedReplicas):
        self.reader = reader  # a ControlFileReader on rank 0, None elsewhere
        self.replicas = replicas

    def poll(self) -> list:
        return self.replicas.share(self.reader.poll() if self.reader is not None else None) or []


def describe_failure(exc: BaseException, rank: int) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, (ReplicaError, RankTerminated)):
        return text
    return f"rank {rank}: {type(exc).__name__}: {text}"[:600]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed child of the launcher stays a zombie until it is reaped; that is not alive.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
