"""The per-layer routing a RunSeries keeps for the Routing tab: utilization by step in a StepMatrix,
entropy, overflow and spread in rows shared with every other curve (a gap where a batch did not
measure them), the same from columns as from records, dead-expert notices that clear once the
expert gets tokens again, and what the tab says of a run that has nothing to show."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from geogui.engine.log_lines import batch_line
from geogui.engine.metrics import EventKind, ModeChange, RunEvent
from geogui.gui.plotdata.routing_series import (GEOMETRIC_GAPS_NOTE, GEOMETRIC_ONLY_NOTE, OLD_RUN_NOTE, dead_expert,
                                                mean_entropy, mean_overflow, spread_of, utilization_spread)
from geogui.gui.plotdata.run_series import RunSeries
from geogui.rundir.reader import parse_columns

from tests.gui.conftest import synthetic_record

LAYERS, EXPERTS = 4, 8
NAMES = ("E0", "E1", "E2", "E3", "G0", "G1", "G2", "G3")


def utilization_at(step: int) -> np.ndarray:
    """(4, 8) utilization that tells step, layer and expert apart, in eighths (exact in float32 and
    in a metrics line's 3 decimals); G2 and G3 dormant (NaN), layer 2's E3 dead (0)."""
    values = ((np.arange(LAYERS)[:, None] + np.arange(EXPERTS)[None, :] + step) % 16) / 8.0
    values[:, 6:] = np.nan
    values[2, 3] = 0.0
    return values


def routed(step: int, mode: str = "geometric_fast", utilization: np.ndarray | None = None):
    """A batch record with per-layer routing (none in geometric, as the trainer logs it), each value one a
    metrics line keeps (3 decimals)."""
    record = synthetic_record(step, mode=mode)
    if mode == "geometric":
        return record
    return dataclasses.replace(
        record, expert_utilization=utilization_at(step) if utilization is None else utilization,
        routing_entropy=(np.arange(LAYERS) + step % 8) / 8.0, layer_overflow=(16 * np.arange(LAYERS) + step) / 1000.0)


def metrics_text(records) -> bytes:
    lines = [json.dumps(r.to_json()) if isinstance(r, (ModeChange, RunEvent)) else batch_line(r) for r in records]
    return ("\n".join(lines) + "\n").encode()


def test_entropy_and_overflow_share_rows_with_the_other_curves_with_gaps_where_not_measured():
    series = RunSeries(8, 4)
    records = [routed(s, "geometric") for s in range(1, 4)] + [routed(s) for s in range(4, 10)]
    series.append(records)
    routing = series.routing
    assert len(routing.entropy) == len(routing.overflow) == len(routing.spread) == len(series) == 9
    entropy = routing.entropy.view()
    assert np.isnan(entropy[:3]).all()  # geometric first: the columns were made later, NaN before
    assert entropy[3:].tolist() == [r.routing_entropy.tolist() for r in records[3:]]
    assert routing.overflow.view()[5].tolist() == pytest.approx(records[5].layer_overflow.tolist())
    series.append([routed(10, "geometric"), routed(11)])
    assert np.isnan(routing.entropy.view()[9]).all() and not np.isnan(routing.entropy.view()[10]).any()
    assert (routing.layers, routing.experts) == (LAYERS, EXPERTS)
    assert len(routing.utilization) == 7  # a row per batch that measured routing: none for geometric
    first, last = routing.utilization.steps()
    assert first.tolist() == [4, 5, 6, 7, 8, 9, 11]


def test_the_utilization_store_holds_each_batch_layer_major_and_its_window_mean():
    series = RunSeries(8, 4)
    records = [routed(s) for s in range(1, 31)]
    series.append(records)
    rows = series.routing.utilization.rows()
    np.testing.assert_array_equal(rows[6].reshape(LAYERS, EXPERTS), utilization_at(7))  # column l * 8 + e
    means = series.routing.window_mean(10)
    want = np.mean([utilization_at(s)[:, :6] for s in range(21, 31)], axis=0)
    np.testing.assert_allclose(means[:, :6], want, rtol=1e-6)
    assert np.isnan(means[:, 6:]).all()  # G2, G3: dormant ghosts, no value
    assert means[2, 3] == 0.0


def test_the_utilization_spread_is_the_mean_over_layers_of_max_minus_min_over_routable_experts():
    utilization = np.ones((1, LAYERS, EXPERTS))
    utilization[0, :, 6:] = np.nan  # dormant ghosts are not routable: left out
    utilization[0, 1, 0], utilization[0, 1, 1] = 2.0, 0.0  # layer 1: one twice its share, one dead
    utilization[0, 3, 2] = 1.5
    assert spread_of(utilization.reshape(1, -1), LAYERS).tolist() == [(0 + 2 + 0 + 0.5) / 4]
    series = RunSeries(8, 4)
    series.append([routed(1, utilization=utilization[0]), routed(2, "geometric")])
    spread = utilization_spread(series)
    assert spread[0] == 0.625 and np.isnan(spread[1])
    assert mean_entropy(series)[0] == pytest.approx(np.mean((np.arange(4) + 1) / 8))
    assert mean_overflow(series)[0] == pytest.approx(np.mean((16 * np.arange(4) + 1) / 1000))
    assert np.isnan(mean_entropy(series)[1]) and np.isnan(mean_overflow(series)[1])


def test_a_run_read_from_its_columns_holds_what_it_held_live():
    records = [routed(s) for s in range(1, 9)]
    records.append(ModeChange(9, "geometric", 0.001, "geometric_fast", 0.001))
    records += [routed(s, "geometric") for s in range(9, 13)]
    records.append(ModeChange(13, "standard", 0.001, "geometric", 0.001))
    records += [routed(s, "standard") for s in range(13, 20)]
    records.append(RunEvent(19, EventKind.EXPERT_DEAD, "layer 2: expert E3 has had no tokens for 15 steps"))
    live = RunSeries(8, 4)
    live.extend_records(records)
    opened = RunSeries(8, 4)
    opened.extend_columns(parse_columns(metrics_text(records)))
    for name in ("entropy", "overflow", "spread"):
        np.testing.assert_allclose(getattr(opened.routing, name).view(), getattr(live.routing, name).view(),
                                   rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(opened.routing.utilization.rows(), live.routing.utilization.rows())
    np.testing.assert_array_equal(opened.routing.utilization.steps()[0], live.routing.utilization.steps()[0])
    assert opened.routing.dead_now(NAMES) == live.routing.dead_now(NAMES) != []
    assert opened.routing.note() == live.routing.note() == GEOMETRIC_GAPS_NOTE


def test_a_dead_expert_is_listed_from_its_event_until_it_gets_tokens_again():
    event = RunEvent(250, EventKind.EXPERT_DEAD, "layer 2: expert E3 has had no tokens for 200 steps")
    assert dead_expert(event).text == "layer 2: E3 dead since step 51"
    assert dead_expert(RunEvent(5, EventKind.GHOST_WOKE, "layer 0: ghost expert G0 woke")) is None
    series = RunSeries(8, 4)
    series.append([routed(s) for s in range(240, 251)])  # layer 2's E3 has 0 throughout
    series.add_event(event)
    series.add_event(RunEvent(250, EventKind.EXPERT_DEAD, "layer 0: expert E1 has had no tokens for 200 steps"))
    assert [dead.text for dead in series.routing.dead_now(NAMES)] == [
        "layer 0: E1 dead since step 51", "layer 2: E3 dead since step 51"]  # by layer
    alive = utilization_at(251)
    alive[2, 3], alive[0, 1] = 0.25, 0.0
    series.append([routed(251, utilization=alive)])
    # Layer 0's E1 had tokens before its notice (utilization_at gives it some), but none since: still listed.
    assert [dead.text for dead in series.routing.dead_now(NAMES)] == ["layer 0: E1 dead since step 51"]
    series.add_event(RunEvent(300, EventKind.EXPERT_DEAD, "layer 2: expert E3 has had no tokens for 40 steps"))
    assert "layer 2: E3 dead since step 261" in [dead.text for dead in series.routing.dead_now(NAMES)]


def test_a_run_with_nothing_to_show_says_why():
    old = RunSeries(8, 4)  # logged before the routing fields existed: no record has them
    old.append([synthetic_record(s) for s in range(1, 6)])
    assert old.routing.entropy is None and old.routing.note() == OLD_RUN_NOTE
    assert np.isnan(mean_entropy(old)).all() and len(mean_entropy(old)) == 5
    geometric = RunSeries(8, 4)
    geometric.append([routed(s, "geometric") for s in range(1, 6)])
    assert geometric.routing.note() == GEOMETRIC_ONLY_NOTE
    assert RunSeries(8, 4).routing.note() == ""
    old_columns = parse_columns(metrics_text([synthetic_record(s) for s in range(1, 6)]))
    opened = RunSeries(8, 4)
    opened.extend_columns(old_columns)
    assert opened.routing.entropy is None and opened.routing.note() == OLD_RUN_NOTE and len(opened) == 5


def test_columns_made_after_the_store_has_coarsened_stay_aligned():
    series = RunSeries(8, 4, capacity=16)
    series.append([routed(s, "geometric") for s in range(1, 41)])  # coarsened into bins before any routing
    assert series.bin_size > 1
    series.append([routed(s) for s in range(41, 61)])
    routing = series.routing
    assert len(routing.entropy) == len(routing.spread) == len(series) <= 16
    entropy = routing.entropy.view()
    steps = series.step.view()
    assert np.isnan(entropy[steps < 40]).all()  # the geometric bins: a gap
    assert np.isfinite(entropy[steps > 41]).all()
    assert np.nanmax(entropy) == max(((np.arange(4) + s % 8) / 8).max() for s in range(41, 61))  # extremes kept
