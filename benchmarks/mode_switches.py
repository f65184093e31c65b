"""What a mode switch costs the plots: resident memory per switch, and scene items per plot.

    python benchmarks/mode_switches.py [--switches 300]

Feeds a PlotBoard (offscreen, 1280 x 720) five steps and then a mode change, again and again,
redrawing every tab each time as a user flipping through them would, and prints the resident set
added per switch after a warm-up of 20 switches, and the scene items of the first plot.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

MODES = ["standard", "geometric_fast", "geometric"]
NAMES = ("E0", "E1", "E2", "E3", "G0", "G1", "G2", "G3")


def rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=300)
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    from geogui.engine.metrics import ModeChange
    try:
        from geogui.gui.plots.board import PlotBoard
    except ImportError:  # before the gui/ folders: to measure an older commit side by side
        from geogui.gui.plots import PlotBoard
    from tests.gui.conftest import synthetic_record

    app = QApplication([])
    board = PlotBoard()
    board.timer.stop()
    board.resize(1280, 720)
    board.show()
    board.start_run(8, 4, NAMES)
    step = 1

    def switch(count: int) -> None:
        nonlocal step
        for k in range(count):
            board.append([synthetic_record(s, mode=MODES[k % 3]) for s in range(step, step + 5)])
            step += 5
            board.add_mode_change(ModeChange(step, MODES[(k + 1) % 3], 0.001, MODES[k % 3], 0.001))
            for index in range(board.tabs.count()):
                board.tabs.setCurrentIndex(index)
                board.redraw()
            app.processEvents()

    switch(20)
    before = rss_bytes()
    switch(args.switches)
    added = rss_bytes() - before
    print(f"switches={args.switches}")
    print(f"rss_added_kib_per_switch={added / args.switches / 1024:.1f}  # with 5 steps of data each")
    print(f"scene_items_first_plot={len(board.batch_time_plot.scene().items())}")
    os._exit(0)  # skip Qt's teardown of the offscreen widgets: nothing to measure there


if __name__ == "__main__":
    raise SystemExit(main())
