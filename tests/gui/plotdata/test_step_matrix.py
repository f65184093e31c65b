"""The per-step matrix store: every bin is the exact mean of its raw steps, memory stays bounded, and the
images it hands a heatmap are the raw data's means over equal cells that never outnumber the pixels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from geogui.gui.plotdata.step_matrix import StepMatrix

WIDTH = 6


def raw_run(rng: np.random.Generator, count: int, gaps: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Steps (contiguous, or with gaps) and rows with scattered NaNs and whole NaN rows and stretches."""
    steps = np.cumsum(rng.integers(1, 4, size=count)) if gaps else np.arange(1, count + 1)
    rows = rng.random((count, WIDTH)).astype(np.float32) * 2
    rows[rng.random((count, WIDTH)) < 0.1] = np.nan
    rows[rng.random(count) < 0.05] = np.nan  # geometric-mode batches: no routing at all
    rows[count // 3: count // 3 + 30] = np.nan
    rows[:, 4] = np.nan  # a column that never has a value
    return steps, rows


def fill(store: StepMatrix, steps: np.ndarray, rows: np.ndarray, rng: np.random.Generator, check=None) -> None:
    """Append in chunks of every size, as the worker delivers batches."""
    done = 0
    while done < len(steps):
        take = min(int(rng.integers(1, 3 * store.capacity)), len(steps) - done)
        store.append(steps[done:done + take], rows[done:done + take])
        done += take
        if check is not None:
            check(store, steps[:done], rows[:done])


def raw_mean(steps: np.ndarray, rows: np.ndarray, first: float, last: float) -> np.ndarray:
    """The brute-force answer: the NaN-ignoring mean of the raw rows with first <= step <= last."""
    chunk = rows[(steps >= first) & (steps <= last)].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column of NaNs only: its mean is NaN
        return np.nanmean(chunk, axis=0) if len(chunk) else np.full(rows.shape[1], np.nan)


def check_bins(store: StepMatrix, steps: np.ndarray, rows: np.ndarray) -> None:
    """Every stored row against the raw steps it stands for."""
    assert len(store) <= store.capacity
    firsts, lasts = store.steps()
    index = np.searchsorted(steps, firsts)
    assert np.array_equal(steps[index], firsts)  # every bin starts at a raw step
    last_index = np.searchsorted(steps, lasts)
    assert np.array_equal(steps[last_index], lasts)
    assert index[0] == 0 and last_index[-1] == len(steps) - 1
    assert np.array_equal(index[1:], last_index[:-1] + 1)  # bins tile the run, in order
    sizes = last_index - index + 1
    assert np.all(sizes[:-1] == store.bin_size) and 1 <= sizes[-1] <= store.bin_size
    stored = store.rows()
    for row, (first, last) in enumerate(zip(firsts, lasts)):
        np.testing.assert_allclose(stored[row], raw_mean(steps, rows, first, last), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("capacity,gaps", [(8, False), (16, True), (50, False)])
def test_every_bin_is_the_exact_mean_of_its_steps(seed, capacity, gaps):
    rng = np.random.default_rng(seed)
    steps, rows = raw_run(rng, 1200, gaps)
    store = StepMatrix(WIDTH, capacity)
    fill(store, steps, rows, rng, check_bins)
    assert store.bin_size > 1  # it coarsened, many times
    assert np.isnan(store.rows()[:, 4]).all()  # a column of NaNs stays NaN through every merge


def test_before_coarsening_every_step_is_its_own_row():
    rng = np.random.default_rng(1)
    steps, rows = raw_run(rng, 40)
    store = StepMatrix(WIDTH, 64)
    store.append(steps, rows)
    assert store.bin_size == 1 and len(store) == 40
    firsts, lasts = store.steps()
    assert np.array_equal(firsts, steps) and np.array_equal(lasts, steps)
    np.testing.assert_array_equal(store.rows(), rows)


def test_a_nan_row_merged_with_values_gives_the_values_mean():
    store = StepMatrix(2, capacity=2)
    store.append([1, 2, 3], [[np.nan, np.nan], [1.0, np.nan], [3.0, 5.0]])
    assert store.bin_size == 2
    np.testing.assert_array_equal(store.rows(), [[1.0, np.nan], [3.0, 5.0]])
    store.append([4], [[np.nan, np.nan]])
    np.testing.assert_array_equal(store.rows()[-1], [3.0, 5.0])  # the NaN step leaves the bin's mean


def test_memory_stays_bounded_for_ten_times_the_capacity():
    capacity = 1024
    store = StepMatrix(32, capacity)
    rng = np.random.default_rng(0)
    held = []
    for chunk in range(100):  # 100 x 128 steps: 12.5 x the capacity
        steps = np.arange(chunk * 128 + 1, chunk * 128 + 129)
        store.append(steps, rng.random((128, 32)))
        held.append(store.nbytes())
        assert len(store) <= capacity
    assert store.bin_size >= 8
    # Two buffers' worth at most: the doubling buffers never outgrow twice the capacity.
    per_row = 32 * (4 + 4) + 2 * 8
    assert max(held) <= 2 * capacity * per_row
    assert held[-1] == held[len(held) // 2]  # no growth once coarsening has begun
    one_big = StepMatrix(32, capacity)
    one_big.append(np.arange(1, 10 * capacity + 1), rng.random((10 * capacity, 32)))  # one huge delivery
    assert len(one_big) <= capacity and one_big.nbytes() <= 2 * capacity * per_row


def check_image(store, steps, rows, columns, x_range, pixels) -> None:
    """One image against the raw rows: at most `pixels` equal cells, each the mean of the raw steps of
    the bins it holds, covering the view's part of the data."""
    image, x0, x1 = store.image(columns, x_range, pixels)
    cols = np.arange(WIDTH)[columns]
    assert image.dtype == np.float32 and image.shape[0] == len(cols)
    lo = steps[0] - 0.5 if x_range is None else max(x_range[0], steps[0] - 0.5)
    hi = steps[-1] + 0.5 if x_range is None else min(x_range[1], steps[-1] + 0.5)
    cells = image.shape[1]
    if hi <= lo:  # the view shows none of the data
        assert cells == 0
        return
    assert 1 <= cells <= pixels
    width = (x1 - x0) / cells
    assert width == round(width) and round(width) % store.bin_size == 0  # whole bins per cell
    assert x0 <= lo and x1 >= hi  # the extent covers what the view shows of the data
    assert x0 > lo - width and x1 < hi + width  # and no whole cell more
    firsts, lasts = store.steps()
    centres = (firsts + lasts) / 2
    for j in range(cells):
        left, right = x0 + j * width, x0 + (j + 1) * width
        held = (centres >= left) & (centres < right)  # the bins this cell holds, whole
        if not held.any():
            assert np.isnan(image[:, j]).all()
            continue
        expected = raw_mean(steps, rows, firsts[held].min(), lasts[held].max())[cols]
        np.testing.assert_allclose(image[:, j], expected, rtol=1e-5, atol=1e-6)
        if store.bin_size == 1 or not (np.diff(steps) > 1).any():
            assert left < firsts[held].min() and lasts[held].max() < right  # the bins lie inside the cell


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("count,capacity", [(300, 1000), (5000, 256)])
def test_image_is_the_mean_of_the_raw_steps_in_each_cell(seed, count, capacity):
    rng = np.random.default_rng(seed)
    steps, rows = raw_run(rng, count, gaps=seed == 2)
    store = StepMatrix(WIDTH, capacity)
    fill(store, steps, rows, rng)
    assert (store.bin_size > 1) == (count > capacity)
    last = float(steps[-1])
    for columns in (slice(None), slice(2, 5), np.array([5, 0, 3])):
        for pixels in (1, 7, 100, 2000):
            check_image(store, steps, rows, columns, None, pixels)
            for _ in range(4):
                lo = float(rng.uniform(-50, last))
                check_image(store, steps, rows, columns, (lo, lo + float(rng.uniform(1, last))), pixels)


def test_image_at_full_detail_is_one_cell_per_step_with_exact_edges():
    store = StepMatrix(2)
    rows = np.arange(200, dtype=np.float32).reshape(100, 2)
    store.append(np.arange(1, 101), rows)
    image, x0, x1 = store.image(slice(None), (10.5, 20.5), pixels=500)
    assert (x0, x1) == (10.5, 20.5)  # steps 11..20, each over [s - 0.5, s + 0.5]
    np.testing.assert_array_equal(image, rows[10:20].T)
    image, x0, x1 = store.image([1], (10.0, 20.0), pixels=500)  # a range that cuts cells: they count whole
    assert (x0, x1) == (9.5, 20.5) and image.shape == (1, 11)
    image, x0, x1 = store.image(slice(None), None, pixels=10)  # the whole run: 100 steps into 10 cells of 10
    assert (x0, x1, image.shape) == (0.5, 100.5, (2, 10))
    np.testing.assert_allclose(image[0], rows[:, 0].reshape(10, 10).mean(axis=1))
    image, x0, x1 = store.image(slice(None), (0.5, 100.5), pixels=10)  # a view that could sit anywhere
    assert image.shape[1] <= 10 and x1 - x0 == 12 * image.shape[1]  # cells of 12 fit wherever it is


def test_panning_keeps_the_grid():
    store = StepMatrix(1)
    store.append(np.arange(1, 1001), np.random.default_rng(0).random((1000, 1)))
    a = store.image([0], (100.0, 400.0), pixels=60)
    width = a.cell_steps
    for offset in (1.0, 2.5, 30.0, 33.3):  # wherever the view is, the same cells with the same means
        b = store.image([0], (100.0 + offset, 400.0 + offset), pixels=60)
        assert b.cell_steps == width and b.cells <= 60
        shift = round((b.x0 - a.x0) / width)
        assert b.x0 - a.x0 == shift * width
        overlap = a.image.shape[1] - shift
        np.testing.assert_array_equal(a.image[:, shift:], b.image[:, :overlap])


def test_image_of_nothing_or_outside_the_data_is_empty():
    store = StepMatrix(3)
    assert store.image(slice(None), None, 100).image.shape == (3, 0)
    store.append([5, 6], np.ones((2, 3)))
    assert store.image(slice(None), (100.0, 200.0), 100).image.shape == (3, 0)
    assert store.image([0], (-10.0, 4.0), 100).image.shape == (1, 0)
    store.append([1000], np.ones((1, 3)))
    image, x0, x1 = store.image([0, 1], (100.0, 110.0), 100)  # inside the gap between steps 6 and 1000
    assert image.shape == (2, 11) and np.isnan(image).all() and (x0, x1) == (99.5, 110.5)


@pytest.mark.parametrize("capacity", [16, 4096])
def test_window_mean_is_the_mean_of_the_last_steps(capacity):
    rng = np.random.default_rng(3)
    steps, rows = raw_run(rng, 3000)
    store = StepMatrix(WIDTH, capacity)
    fill(store, steps, rows, rng)
    for last_steps in (1, 64, 1000, 10_000):
        got = store.window_mean(slice(None), last_steps)
        if store.bin_size == 1:
            first = steps[-1] - last_steps + 1
        else:  # whole bins whose centre is in the window, and the last bin always
            firsts, lasts = store.steps()
            first = min(firsts[-1], firsts[(firsts + lasts) / 2 > steps[-1] - last_steps].min(initial=firsts[-1]))
        np.testing.assert_allclose(got, raw_mean(steps, rows, first, steps[-1]), rtol=1e-5, atol=1e-6)
    assert store.window_mean([1, 2], 100).shape == (2,)
    assert np.isnan(StepMatrix(2).window_mean(slice(None), 10)).all()


def test_value_at_is_the_row_holding_the_step_or_the_nearest():
    store = StepMatrix(1, capacity=4)
    store.append(np.arange(1, 17), np.arange(16, dtype=np.float32)[:, None])
    assert store.bin_size == 4
    row = store.value_at(6)
    assert (row.first, row.last) == (5, 8) and row.values[0] == pytest.approx(np.mean([4, 5, 6, 7]))
    assert store.value_at(-100).first == 1 and store.value_at(1e9).last == 16
    gapped = StepMatrix(1)
    gapped.append([10, 20], [[1.0], [2.0]])
    assert gapped.value_at(14).first == 10 and gapped.value_at(16).first == 20
    assert StepMatrix(1).value_at(3) is None


def test_steps_must_increase_and_clear_starts_afresh():
    store = StepMatrix(1, capacity=4)
    store.append(np.arange(1, 11), np.ones((10, 1)))
    with pytest.raises(ValueError):
        store.append([10], [[1.0]])
    with pytest.raises(ValueError):
        store.append([12, 11], [[1.0], [1.0]])
    store.clear()
    assert len(store) == 0 and store.bin_size == 1
    store.append([1], [[2.0]])
    assert store.steps()[0].tolist() == [1] and store.rows().tolist() == [[2.0]]
