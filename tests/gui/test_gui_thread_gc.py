"""Qt objects made on the GUI thread are destroyed on the GUI thread, even while a run is training.

Python's cyclic garbage collector runs in whichever thread happens to allocate when a threshold is
crossed, and the training thread allocates all the time. A reference cycle holding a Qt object (a
closed window, a finished session, a lambda connected to its own widget) would then be destroyed in
the training thread: Qt forbids that, and it deadlocked the two threads here about one full test
run in four (the training thread holding the GIL inside a Qt destructor, the GUI thread waiting for
the GIL while holding the lock that destructor needed).
"""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QObject

from geogui.gui.worker import TrainingSession

from .conftest import tiny_settings

TIMEOUT_MS = 60_000


class CyclicQObject(QObject):
    """A Qt object kept alive only by a reference cycle, so only the cyclic collector frees it."""

    def __init__(self, deaths: list[str]) -> None:
        super().__init__()
        self.cycle = self
        self.deaths = deaths

    def __del__(self) -> None:
        self.deaths.append(threading.current_thread().name)


def test_cycles_holding_qt_objects_are_collected_on_the_gui_thread_during_a_run(qtbot):
    deaths: list[str] = []
    session = TrainingSession(tiny_settings(steps=30), metrics_interval_s=0.05)
    gc.collect()  # start from a clean slate: only the cycles made below are pending
    for _ in range(50):
        CyclicQObject(deaths)
    with qtbot.waitSignal(session.ended, timeout=TIMEOUT_MS):
        session.start()
    gc.collect()  # whatever is still pending is collected here, on the GUI thread
    assert len(deaths) == 50
    assert set(deaths) == {threading.main_thread().name}, deaths


def test_collection_goes_back_to_the_interpreter_when_the_last_run_ends():
    from geogui.gui.gui_thread_gc import GuiThreadGarbageCollection

    assert gc.isenabled()
    collection = GuiThreadGarbageCollection()
    collection.hold()
    collection.hold()  # two runs at once
    assert not gc.isenabled() and collection.active
    collection.release()
    assert not gc.isenabled(), "one run still going"
    collection.release()
    collection.release()  # an extra release is harmless
    assert gc.isenabled() and not collection.active


def test_due_generations_are_collected_by_the_timer_slot():
    from geogui.gui.gui_thread_gc import GuiThreadGarbageCollection

    deaths: list[str] = []
    collection = GuiThreadGarbageCollection()
    collection.hold()
    try:
        gc.collect()
        for _ in range(gc.get_threshold()[0] + 10):  # past generation 0's threshold
            CyclicQObject(deaths)
        collection.collect_due_generations()
        assert len(deaths) > 0
        assert gc.get_count()[0] < gc.get_threshold()[0]
    finally:
        collection.release()
