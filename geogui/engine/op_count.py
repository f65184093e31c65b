"""What a GPU pays for in a piece of torch code: aten ops (each one a kernel launch, unless it is a
view) and the ops that make the host wait for the device queue.

`count_ops` runs a callable under a `TorchDispatchMode` that sees every aten op, forward and
backward, and sorts them. It works on CPU tensors too, so a test on a machine without a GPU can
hold the GPU path to its budget: the ops are the same whatever the device, only their cost differs.

Sync-forcing ops (the host blocks until the queue has drained, on CUDA and on MPS):
- data-dependent output shapes: `nonzero` (also behind `torch.where(mask)`, boolean-mask indexing
  and `masked_select`), `unique`, `repeat_interleave` without an output size;
- host reads of device values: `_local_scalar_dense` (`.item()`, `float(t)`, `bool(t)`), `equal`,
  `is_nonzero`;
- `bincount` (torch 2.13 reads its `max()` on the host);
- a copy to the host (`_to_copy` to the CPU): the step's one record transfer, counted apart;
- host data entering the step (`lift_fresh`: `torch.tensor(list)`, `torch.as_tensor(list, device=…)`,
  indexing with a Python list): a blocking host-to-device copy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import torch
from torch.utils._python_dispatch import TorchDispatchMode

T = TypeVar("T")

_SYNC_OPS = frozenset({
    "nonzero", "_local_scalar_dense", "bincount", "masked_select", "unique", "_unique", "_unique2",
    "unique_dim", "unique_consecutive", "equal", "is_nonzero", "lift_fresh", "histc",
})
# Ops that only make a new view of existing storage: no kernel launch on any device.
_VIEW_OPS = frozenset({
    "view", "_unsafe_view", "reshape", "t", "transpose", "permute", "unsqueeze", "squeeze", "expand",
    "slice", "select", "split", "split_with_sizes", "unbind", "detach", "alias", "as_strided", "unflatten",
    "flatten", "diagonal", "narrow", "chunk", "view_as", "expand_as", "_reshape_alias", "unfold",
})


def _base_name(func: Any) -> str:
    return func._schema.name.split("::", 1)[-1]


def _is_bool_index(args: tuple) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices or ())


@dataclass
class OpCount:
    """The aten ops one call ran, by kind."""

    ops: Counter = field(default_factory=Counter)  # every aten op by name
    syncs: Counter = field(default_factory=Counter)  # sync-forcing ops by name (host transfers apart)
    host_transfers: int = 0  # copies of device values to the host (`_to_copy` to the CPU)
    float64_ops: Counter = field(default_factory=Counter)  # ops that produced a float64 tensor

    @property
    def total(self) -> int:
        return sum(self.ops.values())

    @property
    def launches(self) -> int:
        """Ops that run a kernel (views excluded)."""
        return sum(count for name, count in self.ops.items() if name not in _VIEW_OPS)

    @property
    def sync_total(self) -> int:
        return sum(self.syncs.values()) + self.host_transfers


class _Counting(TorchDispatchMode):
    def __init__(self, result: OpCount):
        super().__init__()
        self.result = result

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.namespace != "aten":  # the profiler's record_function markers and the like: no kernel
            return func(*args, **kwargs)
        name = _base_name(func)
        self.result.ops[name] += 1
        if name in _SYNC_OPS:
            self.result.syncs[name] += 1
        elif name == "repeat_interleave" and kwargs.get("output_size") is None and len(args) < 4:
            self.result.syncs[name] += 1
        elif name in ("index", "index_put", "index_put_", "_index_put_impl_") and _is_bool_index(args):
            self.result.syncs[f"{name}[bool mask]"] += 1
        elif name == "_to_copy" and kwargs.get("device") is not None and torch.device(kwargs["device"]).type == "cpu":
            self.result.host_transfers += 1
        out = func(*args, **kwargs)
        outputs = out if isinstance(out, (tuple, list)) else (out,)
        if any(isinstance(o, torch.Tensor) and o.dtype == torch.float64 for o in outputs):
            self.result.float64_ops[name] += 1
        return out


def count_ops(fn: Callable[[], T]) -> tuple[T, OpCount]:
    """Run `fn()` and count the aten ops it dispatched (autograd's backward included)."""
    result = OpCount()
    with _Counting(result):
        value = fn()
    return value, result
