"""Cyclic garbage collection on the GUI thread only, while a training thread runs.

Python's cyclic collector runs in whichever thread happens to allocate when a threshold is crossed,
and the training thread allocates all the time. A reference cycle holding a Qt object made on the
GUI thread (a closed window, a finished session, a lambda connected to its own widget) would then
be destroyed in the training thread. Qt forbids that, and it deadlocked the two threads here: the
training thread holding the GIL inside a Qt destructor, the GUI thread waiting for the GIL while
holding the lock that destructor needed.

So while any training thread is alive, automatic collection is off and a GUI-thread timer collects
instead, generation by generation with the interpreter's own thresholds (pyqtgraph's
`GarbageCollector` does the same for a whole application; this one hands collection back to the
interpreter when the last run ends, so nothing else in the process changes behaviour).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QTimer

CHECK_INTERVAL_MS = 500


class GuiThreadGarbageCollection:
    """Reference-counted: `hold()` when a training thread starts, `release()` when it has ended."""

    def __init__(self, interval_ms: int = CHECK_INTERVAL_MS) -> None:
        self._timer = QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect_due_generations)
        self._holders = 0
        self._was_enabled = True

    @property
    def active(self) -> bool:
        return self._holders > 0

    def hold(self) -> None:
        if self._holders == 0:
            self._was_enabled = gc.isenabled()
            gc.disable()
            self._timer.start()
        self._holders += 1

    def release(self) -> None:
        if self._holders == 0:
            return
        self._holders -= 1
        if self._holders == 0:
            self._timer.stop()
            gc.collect()  # what piled up during the run, here on the GUI thread
            if self._was_enabled:
                gc.enable()

    def collect_due_generations(self) -> None:
        """Collect the generations whose allocation counts passed the interpreter's thresholds."""
        thresholds, counts = gc.get_threshold(), gc.get_count()
        generation = -1
        for level in range(3):
            if counts[level] <= thresholds[level]:
                break
            generation = level
        if generation >= 0:
            gc.collect(generation)


_instance: GuiThreadGarbageCollection | None = None


def gui_thread_garbage_collection() -> GuiThreadGarbageCollection:
    """The process's one instance, made on first use; call this from the GUI thread only."""
    global _instance
    if _instance is None:
        _instance = GuiThreadGarbageCollection()
    return _instance
