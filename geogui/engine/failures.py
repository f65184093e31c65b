"""What to tell the user when a run dies of its environment: out of memory, a full disk, a run
directory that cannot be written. One line each, saying what happened, what was kept and what to do;
the app's dialog and `geogui-train` show the same line."""

from __future__ import annotations

import errno
from pathlib import Path

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}
KEPT = "everything logged before it is kept"


def is_out_of_memory(exc: BaseException) -> bool:
    # torch.OutOfMemoryError (CUDA, and torch's CPU allocator) is a RuntimeError; MPS raises a plain
    # RuntimeError saying "out of memory"; Python's own allocator raises MemoryError.
    if isinstance(exc, MemoryError):
        return True
    return isinstance(exc, RuntimeError) and (
        type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower())


def describe_failure(exc: BaseException, step: int, run_dir: Path | None = None) -> str | None:
    """The one-line message for an environment failure at `step`; None for any other exception."""
    if is_out_of_memory(exc):
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (f"Out of memory at step {step + 1} ({detail}). The run stopped; {KEPT}, with the last "
                "checkpoint. Lower the batch size, sequence length or model size, then resume or start again.")
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL | _NOT_WRITABLE:
        where = exc.filename or run_dir or "the run directory"
        if exc.errno in _DISK_FULL:
            return (f"Disk full while writing {where} after step {step}. The run stopped; {KEPT}. "
                    "Free some space, then resume the run.")
        return (f"Cannot write {where} ({exc.strerror or 'not writable'}) after step {step}. The run stopped; "
                f"{KEPT}. Make the folder writable, then resume the run.")
    return None
