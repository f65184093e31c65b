"""The level-of-detail store keeps every bin's extremes exactly, in bounded memory."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geogui.gui.plotdata.level_of_detail import LevelOfDetail
from geogui.gui.plotdata.run_series import RunSeries

from tests.gui.conftest import synthetic_record


def brute_force_check(store: LevelOfDetail, step, values, wide, raw_values, raw_wide) -> None:
    """Every stored bin against a direct reduction of the raw batches it stands for."""
    steps = step.view()
    total = len(raw_values)
    assert store.batches == total
    assert store.rows <= store.capacity
    if store.bin_size == 1:
        assert np.array_equal(steps, np.arange(1, total + 1))
        np.testing.assert_array_equal(values.view(), raw_values)
        np.testing.assert_array_equal(wide.view(), raw_wide.astype(np.float32))
        return
    assert store.rows % 2 == 0
    firsts, lasts = steps[0::2].astype(int), steps[1::2].astype(int)
    assert firsts[0] == 1 and lasts[-1] == total
    assert np.array_equal(firsts[1:], lasts[:-1] + 1)  # bins tile the run, in order
    sizes = lasts - firsts + 1
    assert np.all(sizes[:-1] == store.bin_size) and 1 <= sizes[-1] <= store.bin_size
    for index, (first, last) in enumerate(zip(firsts, lasts)):
        chunk = raw_values[first - 1:last]
        high, low = values.view()[2 * index], values.view()[2 * index + 1]
        if np.isnan(chunk).all():
            assert np.isnan(high) and np.isnan(low)
        else:
            assert high == np.nanmax(chunk) and low == np.nanmin(chunk)
        wide_chunk = raw_wide[first - 1:last].astype(np.float32)
        np.testing.assert_array_equal(wide.view()[2 * index], np.fmax.reduce(wide_chunk, axis=0))
        np.testing.assert_array_equal(wide.view()[2 * index + 1], np.fmin.reduce(wide_chunk, axis=0))


def adversarial(rng: np.random.Generator, count: int) -> np.ndarray:
    values = rng.normal(size=count)
    values[rng.random(count) < 0.1] = np.nan  # NaN runs and single NaNs
    spikes = rng.integers(0, count, size=max(1, count // 50))
    values[spikes] = rng.choice([1e6, -1e6], size=len(spikes))  # spikes, often right next to NaNs
    values[np.clip(spikes + 1, 0, count - 1)] = np.nan
    values[count // 3: count // 3 + 40] = np.nan  # a long NaN stretch (standard mode's angles)
    return values


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("capacity", [8, 16, 50])
def test_every_bin_keeps_the_exact_extremes_of_its_batches(seed, capacity):
    rng = np.random.default_rng(seed)
    store = LevelOfDetail(capacity)
    step = store.column(x=True)
    values = store.column()
    wide = store.column(width=3, dtype=np.float32)
    total = 1500
    raw_values = adversarial(rng, total)
    raw_wide = np.stack([adversarial(rng, total) for _ in range(3)], axis=1)
    done = 0
    while done < total:  # batches arrive in chunks of every size, as the worker delivers them
        take = min(int(rng.integers(1, 3 * capacity)), total - done)
        store.extend([np.arange(done + 1, done + take + 1), raw_values[done:done + take],
                      raw_wide[done:done + take]])
        done += take
        brute_force_check(store, step, values, wide, raw_values[:done], raw_wide[:done])
    assert store.bin_size > 1  # the run did coarsen, many times


def test_memory_is_bounded_whatever_the_length():
    series = RunSeries(presentations=8, rotation_dimensions=4, capacity=256)
    held = []
    for chunk in range(400):
        series.append([synthetic_record(chunk * 25 + i + 1) for i in range(25)])
        if chunk in (40, 399):
            held.append(series.nbytes())
    assert series.batches == 10_000 and len(series) <= 256
    assert held[1] == held[0]  # 1,000 batches and 10,000 hold the same bytes


def test_the_mean_batch_time_of_each_mode_stays_exact_after_coarsening():
    series = RunSeries(presentations=8, rotation_dimensions=4, capacity=16)
    records = [synthetic_record(i, mode="standard" if i <= 70 else "geometric") for i in range(1, 201)]
    for start in range(0, 200, 7):
        series.append(records[start:start + 7])
    assert series.bin_size > 1
    for mode in ("standard", "geometric"):
        exact = np.mean([r.batch_time_s * 1000 for r in records if r.mode == mode])
        assert series.mean_batch_ms(mode) == pytest.approx(exact, rel=1e-12)
    assert series.modes_trained() == ["standard", "geometric"]
    # The loss column still holds the run's extremes.
    losses = np.array([r.loss for r in records])
    assert np.nanmax(series.loss.view()) == losses.max() and np.nanmin(series.loss.view()) == losses.min()


def test_the_readout_of_a_coarsened_series_names_the_bin_and_the_extreme():
    from geogui.gui.plotdata.shown_series import ShownSeries, readout

    series = RunSeries(presentations=8, rotation_dimensions=4, capacity=16)
    series.append([synthetic_record(i) for i in range(1, 41)])
    assert series.bin_size == 8  # 40 rows -> 20 in bins of 4 -> 10 in bins of 8
    shown = ShownSeries("run-a", "loss", series, series.step.view(), series.step.view(), series.loss.view(),
                        None, series.bin_size)
    high, low = series.loss.view()[2], series.loss.view()[3]  # the second bin: steps 9-16
    assert high == max(synthetic_record(i).loss for i in range(9, 17))
    assert readout([shown], 10.0, high) == f"run-a · steps 9–16 · loss max {high:.6g} · mode geometric_fast"
    assert readout([shown], 16.0, low) == f"run-a · steps 9–16 · loss min {low:.6g} · mode geometric_fast"


def test_a_run_read_as_columns_plots_as_its_records_do(tmp_path):
    from geogui.engine.metrics import EvalRecord, ModeChange
    from geogui.rundir.reader import read_columns

    records = [synthetic_record(i) for i in range(1, 31)]
    logged = [*records[:10], EvalRecord(10, 2.0, 7.4), ModeChange(11, "standard", 0.001, "geometric_fast", 0.001),
              *[synthetic_record(i, mode="standard") for i in range(11, 21)],
              ModeChange(21, "geometric_fast", 0.002, "standard", 0.001), *records[20:]]
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r.to_json()) + "\n" for r in logged))
    by_records, by_columns = RunSeries(8, 4, capacity=16), RunSeries(8, 4, capacity=16)
    by_records.extend_records(logged)
    by_columns.extend_columns(read_columns(run, cache=False))
    assert by_columns.bin_size == by_records.bin_size > 1
    assert [(s.start_step, s.mode) for s in by_columns.segments] == [(s.start_step, s.mode) for s in by_records.segments]
    for name in ("step", "wall_time_s", "batch_ms", "loss", "loss_ema", "angles", "expert_load"):
        np.testing.assert_allclose(getattr(by_columns, name).view(), getattr(by_records, name).view(), rtol=1e-6,
                                   err_msg=name)
    assert by_columns.mean_batch_ms("standard") == pytest.approx(by_records.mean_batch_ms("standard"), rel=1e-6)
    assert list(by_columns.eval_step.view()) == [10.0]
