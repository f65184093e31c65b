"""What the window costs training, measured in one run.

    python benchmarks/gui_overhead.py [--steps N] [--rounds R] [--settings FILE] [--redraw-only]

Prints, one per line, `name=value`:
- steps_per_s_headless, steps_per_s_window, steps_per_s_ratio (target >= 0.97): the same settings
  trained by the bare Trainer (as `geogui-train` does) and by the app with the window open and
  plotting. Each is a fresh process; rounds alternate so that drift in machine load hits all alike;
  the medians are compared. Steps/s come from the records' own clocks, from the 10th-percentile
  step to the last, so start-up (imports, model build) is not counted.
- timer_lateness_p99_ms (target <= 10): a 10 ms timer on the GUI thread while training and plotting;
  how much later than due each tick fires.
- redraw_1e6_point_series_ms (target <= 10): median time to hand one 1,000,000-point series to its
  plot (reduced to the view's pixels, as every redraw does) and paint the view;
  redraw_training_tab_3x1e6_points_ms: the whole Training tab's redraw, painted, with batch time,
  raw loss and smoothed loss at 1,000,000 steps each; smooth_1e6_points_ms: smoothing a whole
  1,000,000-point loss afresh (what moving the smoothing slider costs).
- redraw_heatmap_4x8x1e5_ms (target <= 10): median time of one StepHeatmap redraw of one layer's 8
  experts from a StepMatrix holding 4 layers x 8 experts x 100,000 steps (binned to the view's
  pixels, as every redraw does), painted, the heatmap alone filling a 1200 x 800 window (the most
  pixels it could have to paint); redraw_matrix_heatmap_ms: a 4 x 8 MatrixHeatmap of the same
  store's mean over its last 1,000 steps, computed, handed over and painted.
- hover_rotation_maps_1e5_ms (target <= 33, the mouse is followed at 30 Hz): the Rotation tab of a
  100,000-step geometric run (8 presentations x 4 angles), the mouse moved to another step: the
  three maps looked up and redrawn, and the whole tab (1200 x 800) painted again, not just what
  changed (an upper bound); redraw_rotation_tab_1e5_ms: the whole tab's redraw, painted;
  compared_rotation_similarity_1e5_ms: the run's curve when it is compared, a value per row of the
  plots' store looked up in the map store.
- redraw_routing_tab_1e5_steps_ms (target: no more than the Training tab's figure above): the whole
  Routing tab's redraw, painted, in a 1200 x 800 board, after 100,000 routed steps of 4 layers x 8
  experts (both heatmaps, 4 entropy and 4 overflow curves, the spread); append_routing_1e5_steps_s:
  the time to add those steps to a RunSeries, 1,000 at a time as a run delivers them, and
  append_routing_ratio, that time over the time for the same steps without per-layer routing.
- launch_to_visible_s (target <= 1.5): from starting the process to the window being exposed.

Each measurement runs in its own subprocess with a private config and data directory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


# -- children ---------------------------------------------------------------------------------------
def steps_per_s(walls: list[float]) -> float:
    """Steps per second between the 10th-percentile step and the last (no warm-up in the figure)."""
    start = len(walls) // 10
    return (len(walls) - 1 - start) / (walls[-1] - walls[start])


def child_headless(settings_file: str | None, steps: int) -> dict:
    from geogui.engine.metrics import BatchRecord
    from geogui.engine.trainer import Trainer

    walls = [e.wall_time_s for e in Trainer(_settings(settings_file, steps)).run() if isinstance(e, BatchRecord)]
    return {"steps_per_s": steps_per_s(walls)}


def child_window(settings_file: str | None, steps: int) -> dict:
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from geogui.engine.metrics import BatchRecord
    from geogui.gui.main_window import MainWindow

    app = QApplication([])
    window = MainWindow(_settings(settings_file, steps), persist=False)
    window.show()
    walls: list[float] = []
    lateness: list[float] = []
    probe = QTimer()
    probe.setTimerType(Qt.TimerType.PreciseTimer)
    probe.setInterval(10)
    due = [0.0]

    def tick() -> None:
        now = time.perf_counter()
        if walls:  # only while training
            lateness.append(max(0.0, now - due[0]))
        due[0] = now + 0.010

    probe.timeout.connect(tick)
    window.start_run()
    window.session.worker.metrics_ready.connect(
        lambda records: walls.extend(r.wall_time_s for r in records if isinstance(r, BatchRecord)),
        Qt.ConnectionType.DirectConnection)
    window.session.ended.connect(app.quit)
    due[0] = time.perf_counter() + 0.010
    probe.start()
    app.exec()
    window.close()
    lateness.sort()
    return {"steps_per_s": steps_per_s(walls), "lateness_p99_ms": 1000 * lateness[int(0.99 * (len(lateness) - 1))],
            "plotted": len(window.plots.series)}


def child_redraw(points: int, repeats: int) -> dict:
    import numpy as np
    from PySide6.QtWidgets import QApplication

    from geogui.gui.plots.board import PlotBoard

    app = QApplication([])
    board = PlotBoard()
    board.timer.stop()
    board.resize(1200, 800)
    board.show()
    board.start_run(0, 0)
    series, rng = board.series, np.random.default_rng(0)
    series.step.extend(np.arange(1, points + 1))
    series.batch_ms.extend(10 + rng.random(points))
    series.loss.extend(5 / np.sqrt(np.arange(1, points + 1)) + 0.1 * rng.random(points))
    series.loss_ema.extend(series.loss.view())
    viewport = board.training.widget.viewport()
    batch_curve = board.batch_time_plot.listDataItems()[0]

    def timed(update) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            update()
            viewport.repaint()  # a synchronous paint: the cost the user waits for
            times.append(time.perf_counter() - start)
            app.processEvents()
        return 1000 * statistics.median(times)

    tab_ms = timed(board.redraw)  # batch time, raw loss and EMA: three 1e6-point series
    batch_time = board.run_view().shown("batch time (ms)", series.batch_ms.view())
    series_ms = timed(lambda: board.batch_time_plot.draw(batch_curve, batch_time))
    smooth = []
    for _ in range(5):
        start = time.perf_counter()
        series.set_smoothing(0.6)
        smooth.append(time.perf_counter() - start)
    return {"series_ms": series_ms, "tab_ms": tab_ms, "smooth_ms": 1000 * statistics.median(smooth)}


def child_redraw_heatmap(steps: int, repeats: int) -> dict:
    import numpy as np
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from geogui.gui.plotdata.step_matrix import StepMatrix
    from geogui.gui.plots.heatmap import MatrixHeatmap, StepHeatmap

    app = QApplication([])
    layers, experts = 4, 8
    store, rng = StepMatrix(layers * experts), np.random.default_rng(0)
    for start in range(0, steps, 1000):  # delivered in chunks, as a run's batches arrive
        count = min(1000, steps - start)
        store.append(np.arange(start + 1, start + count + 1), 2 * rng.random((count, layers * experts)))
    names = tuple(f"E{i}" for i in range(4)) + tuple(f"G{i}" for i in range(4))

    def shown(plot):
        widget = pg.GraphicsLayoutWidget()
        widget.resize(1200, 800)
        widget.addItem(plot)
        widget.show()
        app.processEvents()
        return widget

    def timed(update, viewport) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            update()
            viewport.repaint()  # a synchronous paint: the cost the user waits for
            times.append(time.perf_counter() - start)
            app.processEvents()
        return 1000 * statistics.median(times)

    heatmap = StepHeatmap("Layer 0 utilization", follow_view=False)
    steps_widget = shown(heatmap)
    heatmap.set_source(store, slice(0, experts), names)
    heatmap.redraw()
    step_ms = timed(heatmap.redraw, steps_widget.viewport())
    matrix = MatrixHeatmap("Utilization, last 1,000 steps")
    matrix_widget = shown(matrix)
    layer_names = [f"layer {i}" for i in range(layers)]
    matrix_ms = timed(lambda: matrix.set_matrix(store.window_mean(slice(None), 1000).reshape(layers, experts),
                                                layer_names, names), matrix_widget.viewport())
    return {"step_ms": step_ms, "matrix_ms": matrix_ms, "cells": heatmap.drawn.cells, "bin_size": store.bin_size}


def child_rotation_tab(steps: int, repeats: int) -> dict:
    import numpy as np
    from PySide6.QtWidgets import QApplication

    from geogui.gui.plotdata.run_series import BatchColumns
    from geogui.gui.plots.board import PlotBoard
    from geogui.gui.plots.rotation_tab import mean_rotation_similarity

    app = QApplication([])
    board = PlotBoard()
    board.timer.stop()
    board.resize(1200, 800)
    board.show()
    p, r, rng = 8, 4, np.random.default_rng(0)
    board.start_run(p, r, max_rotation=2.0)
    series, step = board.series, np.arange(1, steps + 1, dtype=np.float64)
    angles = rng.uniform(-2, 2, (steps, p * r)).astype(np.float32)
    hidden = rng.random((steps, p * p)).astype(np.float32)
    ones = np.ones(steps)
    series.append_batches(BatchColumns(step, step * 0.01, step * 128, ones * 0.01, ones, ones, ones, ones, ones,
                                       angles, rng.dirichlet(np.ones(p), steps), rng.random((steps, 4)),
                                       np.ones((steps, 5)), ones * 0.001, ["geometric"] * steps))
    series.rotation.append(step, angles, hidden)
    board.redraw()
    board.tabs.setCurrentIndex(board.plot_tabs.index(board.rotation))
    board.redraw()
    app.processEvents()
    viewport, plot = board.rotation.widget.viewport(), board.rotation.step_plot
    hovered = iter(rng.uniform(1, steps, 10 * repeats))

    def timed(update) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            update()
            viewport.repaint()  # a synchronous paint: the cost the user waits for
            times.append(time.perf_counter() - start)
            app.processEvents()
        return 1000 * statistics.median(times)

    hover_ms = timed(lambda: board.show_crosshair(plot, next(hovered), 0.5))
    board.hide_crosshair(board.rotation)
    index = board.plot_tabs.index(board.rotation)
    tab_ms = timed(lambda: board.redraw_tab(index))
    similarity = []
    for _ in range(5):
        start = time.perf_counter()
        mean_rotation_similarity(series)
        similarity.append(time.perf_counter() - start)
    return {"hover_ms": hover_ms, "tab_ms": tab_ms, "similarity_ms": 1000 * statistics.median(similarity),
            "map_rows": len(series.rotation)}


def _routed_chunks(steps: int, routing: bool):
    """BatchColumns of 1,000 batches each, with per-layer routing or (as an old run) without."""
    import numpy as np

    from geogui.gui.plotdata.run_series import BatchColumns

    rng, layers, experts = np.random.default_rng(0), 4, 8
    for start in range(0, steps, 1000):
        n = min(1000, steps - start)
        step = np.arange(start + 1, start + n + 1, dtype=np.float64)
        ones = np.ones(n)
        fields = dict(expert_utilization=2 * rng.random((n, layers * experts)), routing_entropy=rng.random((n, layers)),
                      layer_overflow=0.1 * rng.random((n, layers))) if routing else {}
        yield BatchColumns(step=step, wall_time_s=step * 0.01, tokens_seen=step * 128, batch_time_s=0.01 * ones,
                           loss=ones, lr_model=ones, lr_rotation=ones, tokens_per_s=ones, memory_bytes=ones,
                           rotation_angles=np.full((n, 32), np.nan), expert_load=rng.random((n, experts)),
                           ghost_activation=rng.random((n, 4)), loss_terms=np.ones((n, 5)), penalty_weight=ones,
                           mode=["geometric_fast"] * n, **fields)


def child_redraw_routing(steps: int, repeats: int) -> dict:
    from PySide6.QtWidgets import QApplication

    from geogui.gui.plotdata.run_series import RunSeries
    from geogui.gui.plots.board import PlotBoard

    app = QApplication([])
    added = {}
    for routing in (False, True):
        chunks = list(_routed_chunks(steps, routing))
        series = RunSeries(8, 4)
        start = time.perf_counter()
        for chunk in chunks:
            series.append_batches(chunk)
        added[routing] = time.perf_counter() - start
    board = PlotBoard()
    board.timer.stop()
    board.resize(1200, 800)
    board.show()
    board.start_run(8, 4)
    for chunk in _routed_chunks(steps, True):
        board.series.append_batches(chunk)
    board.tabs.setCurrentIndex(board.plot_tabs.index(board.routing))
    board.redraw()
    app.processEvents()
    viewport = board.routing.widget.viewport()
    times = []
    for _ in range(repeats):
        board.routing.stale = True
        start = time.perf_counter()
        board.redraw()
        viewport.repaint()  # a synchronous paint: the cost the user waits for
        times.append(time.perf_counter() - start)
        app.processEvents()
    return {"tab_ms": 1000 * statistics.median(times), "append_s": added[True],
            "append_ratio": added[True] / added[False]}


LAUNCH_PROBE = """
import sys, time
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication

class FirstExpose(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Expose and obj.isWindowType() and obj.isExposed():
            print("visible", flush=True)
            QApplication.instance().closeAllWindows()
        return False

app = QApplication(sys.argv[:1])
watcher = FirstExpose()
app.installEventFilter(watcher)
from geogui.app import main
sys.exit(main([]))
"""


def launch_to_visible() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GEOGUI_CONFIG_DIR": tmp, "GEOGUI_DATA_DIR": tmp}
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", LAUNCH_PROBE], stdout=subprocess.PIPE, text=True, env=env)
        line = child.stdout.readline()
        elapsed = time.perf_counter() - start
        child.wait(timeout=60)
    if line.strip() != "visible":
        raise RuntimeError("the window never became visible")
    return elapsed


def _settings(settings_file: str | None, steps: int):
    from geogui.settings import Settings, load_settings_file

    settings = load_settings_file(Path(settings_file)) if settings_file else Settings()
    settings.run.steps = steps
    return settings


# -- orchestration ----------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps per measurement (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="headless/window pairs, alternated (default 3)")
    parser.add_argument("--settings", help="settings JSON (default: the app's defaults)")
    parser.add_argument("--redraw-only", action="store_true", help="only the redraw figures (no training)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, *rest = args.child
        settings_file = args.settings
        if kind == "headless":
            out = child_headless(settings_file, args.steps)
        elif kind == "window":
            out = child_window(settings_file, args.steps)
        elif kind == "redraw_heatmap":
            out = child_redraw_heatmap(int(rest[0]), int(rest[1]))
        elif kind == "rotation_tab":
            out = child_rotation_tab(int(rest[0]), int(rest[1]))
        elif kind == "redraw_routing":
            out = child_redraw_routing(int(rest[0]), int(rest[1]))
        else:
            out = child_redraw(int(rest[0]), int(rest[1]))
        print(json.dumps(out))
        return

    if args.redraw_only:
        print_redraw()
        return
    extra = ["--steps", str(args.steps)] + (["--settings", args.settings] if args.settings else [])
    headless, window = [], []
    for _ in range(args.rounds):
        headless.append(run_child(extra, "headless"))
        window.append(run_child(extra, "window"))
    h = statistics.median(r["steps_per_s"] for r in headless)
    w = statistics.median(r["steps_per_s"] for r in window)
    print(f"steps_per_s_headless={h:.2f}")
    print(f"steps_per_s_window={w:.2f}")
    print(f"steps_per_s_ratio={w / h:.3f}")
    print(f"timer_lateness_p99_ms={statistics.median(r['lateness_p99_ms'] for r in window):.2f}")
    print_redraw()
    print(f"launch_to_visible_s={statistics.median(launch_to_visible() for _ in range(3)):.2f}")


def print_redraw() -> None:
    redraw = run_child([], "redraw", "1000000", "20")
    print(f"redraw_1e6_point_series_ms={redraw['series_ms']:.2f}")
    print(f"redraw_training_tab_3x1e6_points_ms={redraw['tab_ms']:.2f}")
    print(f"smooth_1e6_points_ms={redraw['smooth_ms']:.2f}")
    heatmap = run_child([], "redraw_heatmap", "100000", "20")
    print(f"redraw_heatmap_4x8x1e5_ms={heatmap['step_ms']:.2f}")
    print(f"redraw_matrix_heatmap_ms={heatmap['matrix_ms']:.2f}")
    rotation = run_child([], "rotation_tab", "100000", "20")
    print(f"hover_rotation_maps_1e5_ms={rotation['hover_ms']:.2f}")
    print(f"redraw_rotation_tab_1e5_ms={rotation['tab_ms']:.2f}")
    print(f"compared_rotation_similarity_1e5_ms={rotation['similarity_ms']:.2f}")
    routing = run_child([], "redraw_routing", "100000", "20")
    print(f"redraw_routing_tab_1e5_steps_ms={routing['tab_ms']:.2f}")
    print(f"append_routing_1e5_steps_s={routing['append_s']:.2f}")
    print(f"append_routing_ratio={routing['append_ratio']:.2f}")


def run_child(extra: list[str], *child_args: str) -> dict:
    """Run one measurement in a fresh process with private config/data dirs; return its JSON line."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GEOGUI_CONFIG_DIR": tmp, "GEOGUI_DATA_DIR": tmp}
        result = subprocess.run([sys.executable, str(HERE), *extra, "--child", *child_args], capture_output=True,
                                text=True, env=env, check=False)
    if result.returncode:
        raise RuntimeError(f"child {child_args} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
