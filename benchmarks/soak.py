"""Soak: the real window, offscreen, training for M minutes while being used.

    python benchmarks/soak.py --minutes M [--settings FILE]

Without --settings it trains the app's defaults at a smaller size (d_model 64, 2 layers, context 64,
expert hidden 128, batch 8), so that even a loaded 2-core machine makes thousands of batches and
redraws in the time: the soak is about the app lasting, not about the model.

It trains with the plots live and, on timers of the GUI thread, as a user would:
- switches mode every 30 s (standard -> geometric -> geometric fast -> ...) through the toolbar,
- pauses for 2 s every 45 s, then resumes,
- once a minute exports the run (CSV) and every plot (PNG).

Memory: the process's resident set (RSS) is sampled every 2 s. The baseline is the RSS after the first
two minutes, once torch, every mode (geometric keeps P times the activations) and the first plots
and exports are in; the growth is the peak after that minus the baseline, and the slope is the
least-squares fit of the RSS over the second half of the soak (a steady leak shows as a slope; a
one-off step does not). Both are part of the verdict: growth <= 60 MB (--max-growth-mb) and slope
<= 0.5 MB/min (--max-slope-mb-per-min), the targets of a 60-minute soak (about 200,000 batches of
the soak model on a 2-core machine). What the plots hold (the bytes of the plot store's arrays) is
reported beside it, and the growth without it, so that a growing store is told apart from the rest.

Prints `name=value` lines, then `result=PASS` or `result=FAIL` (and exits 1) if anything failed: the
run, a Qt slot raising, an export, a run that ended on its own, or memory beyond its targets.
A private config and data directory is used, so the user's settings and runs are not touched.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path

SAMPLE_MS = 2_000
SWITCH_MS = 30_000
PAUSE_EVERY_MS = 45_000
PAUSE_FOR_MS = 2_000
EXPORT_MS = 60_000
BASELINE_AFTER_S = 120.0
MAX_GROWTH_MB = 60.0
MAX_SLOPE_MB_PER_MIN = 0.5
SOAK_MODEL = {"run": {"batch_size": 8, "eval_interval": 200},
              "model": {"d_model": 64, "n_layers": 2, "seq_len": 64, "expert_hidden": 128}}


def rss_mb() -> float:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # macOS: the peak is what the standard library offers
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def plot_store_bytes(series) -> int:
    """Bytes of the arrays behind the plots: the store's own count where it keeps one, else the
    buffers of the growable columns found on the series."""
    if hasattr(series, "nbytes"):
        return int(series.nbytes())
    return sum(value._data.nbytes for value in vars(series).values() if hasattr(getattr(value, "_data", None), "nbytes"))


def batches_plotted(series) -> int:
    # A store that coarsens holds fewer rows than batches; it counts the batches itself.
    return int(getattr(series, "batches", len(series)))


def second_half_slope(samples: list[tuple[float, float]]) -> float | None:
    """MB per minute, least squares over the samples of the second half; None with fewer than 3."""
    half = [(t, mb) for t, mb in samples if t >= samples[-1][0] / 2]
    if len(half) < 3:
        return None
    mean_t = sum(t for t, _ in half) / len(half)
    mean_mb = sum(mb for _, mb in half) / len(half)
    spread = sum((t - mean_t) ** 2 for t, _ in half)
    return 60 * sum((t - mean_t) * (mb - mean_mb) for t, mb in half) / spread if spread else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--settings", type=Path, help="settings JSON (default: the app's defaults)")
    parser.add_argument("--baseline-s", type=float, default=BASELINE_AFTER_S,
                        help=f"seconds after which the RSS baseline is taken (default {BASELINE_AFTER_S:g})")
    parser.add_argument("--max-growth-mb", type=float, default=MAX_GROWTH_MB,
                        help=f"RSS growth after the baseline that fails the soak (default {MAX_GROWTH_MB:g})")
    parser.add_argument("--max-slope-mb-per-min", type=float, default=MAX_SLOPE_MB_PER_MIN,
                        help=f"RSS slope over the second half that fails the soak (default {MAX_SLOPE_MB_PER_MIN:g})")
    args = parser.parse_args()

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")  # the offscreen platform's size-hint chatter
    work = Path(tempfile.mkdtemp(prefix="geogui-soak-"))
    os.environ["GEOGUI_CONFIG_DIR"] = str(work / "config")
    os.environ["GEOGUI_DATA_DIR"] = str(work / "data")

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from geogui.rundir.meta import read_meta
    from geogui.gui.main_window import MainWindow
    from geogui.settings import Mode, Settings, load_settings_file

    failures: list[str] = []

    def on_uncaught(kind, value, tb):  # a Qt slot that raises must count, not just print
        failures.append("exception: " + "".join(traceback.format_exception_only(kind, value)).strip())
        traceback.print_exception(kind, value, tb)

    sys.excepthook = on_uncaught
    settings = load_settings_file(args.settings) if args.settings else Settings.model_validate(SOAK_MODEL)
    settings.run.steps = 10_000_000  # never finishes by itself within the soak
    app = QApplication.instance() or QApplication([])
    window = MainWindow(settings, persist=False)
    window.show()
    counts = {"mode_switches": 0, "pauses": 0, "exports": 0, "redraws": 0}
    samples: list[tuple[float, float]] = []
    plot_samples: list[tuple[float, int, int]] = []  # beside each RSS sample: (t, plot store bytes, batches)
    started = time.monotonic()
    modes = [Mode.STANDARD, Mode.GEOMETRIC, Mode.GEOMETRIC_FAST]

    def session_alive() -> bool:
        if window.session is None:
            failures.append(f"the run ended by itself after {time.monotonic() - started:.0f} s")
            app.quit()
            return False
        return True

    def switch_mode() -> None:
        if session_alive():
            window.toolbar.mode_actions[modes[counts["mode_switches"] % len(modes)]].trigger()
            counts["mode_switches"] += 1

    def pause() -> None:
        if session_alive() and not window._paused:
            window.toolbar.pause_action.trigger()
            counts["pauses"] += 1
            QTimer.singleShot(PAUSE_FOR_MS, resume)

    def resume() -> None:
        if window.session is not None and window._paused:
            window.toolbar.pause_action.trigger()

    def export() -> None:
        if not session_alive():
            return
        index = counts["exports"]
        if not window.exports.export_run_to(work / f"export-{index}.csv", window.current_run):
            failures.append(f"run export {index} failed: {window.status.currentMessage()}")
        if len(window.exports.export_plots_to(work / f"plots-{index}.png")) < 2:
            failures.append(f"plot export {index} failed: {window.status.currentMessage()}")
        counts["exports"] += 1

    def sample() -> None:
        t = time.monotonic() - started
        samples.append((t, rss_mb()))
        series = window.plots.series
        plot_samples.append((t, plot_store_bytes(series), batches_plotted(series)))

    def on_failed(message: str) -> None:
        failures.append(f"run failed: {message}")
        app.quit()

    timers = []
    for interval, slot in ((SWITCH_MS, switch_mode), (PAUSE_EVERY_MS, pause), (EXPORT_MS, export),
                           (SAMPLE_MS, sample)):
        timer = QTimer()
        timer.setInterval(interval)
        timer.timeout.connect(slot)
        timer.start()
        timers.append(timer)
    def finish() -> None:
        for timer in timers:  # first: Qt 6's quit() closes the window, which ends the run
            timer.stop()
        app.quit()

    QTimer.singleShot(int(args.minutes * 60_000), finish)
    window.plots.redrawn.connect(lambda _n: counts.__setitem__("redraws", counts["redraws"] + 1))
    if not window.start_run():
        print(f"cannot start: {window.panel.errors()}", file=sys.stderr)
        return 1
    window.session.worker.failed.connect(on_failed)
    sample()
    app.exec()
    for timer in timers:
        timer.stop()

    steps = batches_plotted(window.plots.series)
    run_dir = window.current_run
    window.close()  # stops the run, waits for its thread and closes the log
    status = read_meta(run_dir).status if run_dir else "none"
    if status != "stopped":
        failures.append(f"the run's log was closed as {status!r}, not 'stopped'")

    after = [mb for t, mb in samples if t >= args.baseline_s]
    baseline = after[0] if after else samples[-1][1]
    peak = max(after or [baseline])
    growth = peak - baseline
    plots_after = [sample for sample in plot_samples if sample[0] >= args.baseline_s] or plot_samples[-1:]
    plot_growth = (plots_after[-1][1] - plots_after[0][1]) / 2**20
    slope = second_half_slope(samples)
    minutes = (time.monotonic() - started) / 60
    print(f"minutes={minutes:.1f}")
    print(f"steps={steps}")
    for name, value in counts.items():
        print(f"{name}={value}")
    print(f"rss_start_mb={samples[0][1]:.0f}")
    print(f"rss_baseline_mb={baseline:.0f}  # after {args.baseline_s:.0f} s")
    print(f"rss_peak_mb={peak:.0f}")
    print(f"rss_end_mb={samples[-1][1]:.0f}")
    print(f"rss_growth_mb={growth:.1f}  # target <= {args.max_growth_mb:g}")
    if slope is not None:
        print(f"rss_slope_second_half_mb_per_min={slope:.2f}  # target <= {args.max_slope_mb_per_min:g}")
    print(f"plot_store_mb={plot_samples[-1][1] / 2**20:.1f}")
    print(f"plot_store_growth_mb={plot_growth:.1f}  # after the baseline")
    print(f"rss_growth_without_plot_store_mb={growth - plot_growth:.1f}")
    baseline_steps = plots_after[0][2]
    if steps > baseline_steps:
        print(f"rss_growth_bytes_per_step={growth * 2**20 / (steps - baseline_steps):.0f}  # since the baseline")
    if growth > args.max_growth_mb:
        failures.append(f"RSS grew {growth:.1f} MB after the baseline (target <= {args.max_growth_mb:g} MB)")
    if slope is not None and slope > args.max_slope_mb_per_min:
        failures.append(f"RSS rose {slope:.2f} MB/min over the second half (target <= {args.max_slope_mb_per_min:g})")
    print(f"failures={len(failures)}")
    for failure in failures:
        print(f"failure: {failure}")
    print(f"result={'FAIL' if failures else 'PASS'}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
