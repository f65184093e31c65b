"""What the Routing tab draws of a run: each MoE layer's routing, batch by batch. Numpy only.

`RunSeries` holds a `RoutingSeries` and feeds it every batch, from records or from columns read off
disk, so a run opened from its files shows what it showed live. It keeps
- `utilization`: a `StepMatrix` of every expert's utilization in every layer (L * (E + G) wide,
  layer-major: column l * (E + G) + e), the store the heatmaps draw from; only batches that
  measured routing have a row (a geometric stretch is a gap, and costs nothing);
- `entropy` (N, L), `overflow` (N, L) and `spread` (N,): columns of the RunSeries' `LevelOfDetail`
  store, so they share rows, and x, with every other curve. Their widths come from the first batch
  that has them: the columns are made then, NaN for the rows before (`LevelOfDetail.late_column`);
  a batch without them (geometric, or a run logged before they were measured) is a NaN row, a gap;
- the last step each (layer, expert) got a token, and the dead-expert events, so that a notice of
  a dead expert is cleared as soon as the expert gets tokens again.

The utilization spread of a batch is the mean over layers of (max − min) of the routable experts'
utilization (a dormant ghost, NaN, is not routable and is left out): 0 when every layer spreads its
slots evenly, 2 when a layer has a dead expert beside one taking twice its fair share. In units of
the fair share, it reads the same whatever the number of experts, so runs compare by it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from geogui.engine.metrics import EventKind, RunEvent
from geogui.gui.plotdata.growable import GrowableArray
from geogui.gui.plotdata.level_of_detail import DEFAULT_CAPACITY, LevelOfDetail
from geogui.gui.plotdata.step_matrix import StepMatrix
from geogui.settings import Mode

if TYPE_CHECKING:
    from geogui.gui.plotdata.run_series import BatchColumns, RunSeries
    from geogui.rundir.columns import RunColumns

ROUTING_FIELDS = ("expert_utilization", "routing_entropy", "layer_overflow")
OLD_RUN_NOTE = "This run was logged before per-layer routing was measured: there is nothing to show here."
GEOMETRIC_ONLY_NOTE = ("This run trained only in geometric mode, whose step forces routing: there are no router "
                       "statistics to show.")
GEOMETRIC_GAPS_NOTE = "Gaps and grey cells: the geometric step forces routing, so it has no router statistics."
OLD_GAPS_NOTE = "Gaps: some batches were logged before per-layer routing was measured."
# What the trainer says (geogui.engine.router_watch): "layer 2: expert E3 has had no tokens for 200 steps".
_DEAD_MESSAGE = re.compile(r"layer (\d+): expert (\S+) has had no tokens for (\d+) steps")


@dataclass(frozen=True)
class DeadExpert:
    """A routable expert the run said had no token for a while: `since` is the first step of that stretch."""

    layer: int
    name: str
    since: int
    step: int  # the step the run said so at
    message: str

    @property
    def text(self) -> str:
        return f"layer {self.layer}: {self.name} dead since step {self.since:,}"


def dead_expert(event: RunEvent) -> DeadExpert | None:
    """The expert an `expert_dead` event names; None for another event, or a message this version cannot read."""
    if event.event != EventKind.EXPERT_DEAD:
        return None
    found = _DEAD_MESSAGE.search(event.message)
    if found is None:
        return None
    layer, name, idle = int(found.group(1)), found.group(2), int(found.group(3))
    return DeadExpert(layer, name, int(event.step) - idle + 1, int(event.step), event.message)


def routing_of_records(batches: Sequence) -> dict[str, np.ndarray]:
    """BatchColumns' routing fields from BatchRecords: (N, width) each, width told by the first record
    that has the field (0: none has), NaN rows for records without it."""
    out = {}
    for name in ROUTING_FIELDS:
        values = [getattr(batch, name) for batch in batches]
        known = next((np.ravel(v) for v in values if v is not None), None)
        width = 0 if known is None else known.size
        rows = np.full((len(batches), width), np.nan)
        for index, value in enumerate(values):
            if value is not None and np.size(value) == width:
                rows[index] = np.ravel(value)
        out[name] = rows
    return out


def routing_of_columns(columns: "RunColumns", start: int, stop: int) -> dict[str, np.ndarray]:
    """BatchColumns' routing fields from rows start … stop - 1 of a RunColumns."""
    return {name: getattr(columns, name)[start:stop] for name in ROUTING_FIELDS}


def _mean_over_layers(values: np.ndarray) -> np.ndarray:
    """(N, L) -> (N,): the NaN-ignoring mean of each row; NaN for a row without a value."""
    finite = np.isfinite(values)
    count = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(finite, values, 0.0).sum(axis=1) / count, np.nan)


def spread_of(utilization: np.ndarray, layers: int) -> np.ndarray:
    """(N, L * W) utilization -> (N,) the mean over layers of max − min over the routable experts."""
    rows = np.asarray(utilization, dtype=np.float64).reshape(len(utilization), layers, -1)
    return _mean_over_layers(np.fmax.reduce(rows, axis=2) - np.fmin.reduce(rows, axis=2))


class RoutingSeries:
    """One run's per-layer routing (see the module's docstring). `store`: the RunSeries' columns."""

    def __init__(self, store: LevelOfDetail, capacity: int = DEFAULT_CAPACITY) -> None:
        self._store = store
        self._capacity = capacity
        self.layers = 0  # L, and E + G, once a batch has told them
        self.experts = 0
        self.utilization: StepMatrix | None = None
        self.entropy: GrowableArray | None = None
        self.overflow: GrowableArray | None = None
        self.spread: GrowableArray | None = None
        self.last_routed = np.zeros(0, dtype=np.int64)  # per column: the last step with a token (-1: none yet)
        self.batches = 0  # batches seen, and those that measured routing
        self.measured = 0
        self.unmeasured_modes: set[str] = set()  # the modes of batches without routing
        self._dead: dict[tuple[int, str], DeadExpert] = {}

    def nbytes(self) -> int:
        """Bytes of the utilization store (the curves' columns are counted with the RunSeries' store)."""
        return self.utilization.nbytes() if self.utilization is not None else 0

    # -- adding -----------------------------------------------------------------------------------
    def extend(self, batches: "BatchColumns") -> list[np.ndarray]:
        """Take a chunk of batches; returns the rows of this series' store columns, in their order,
        for the RunSeries to hand its store with the rest (an empty list while there are none)."""
        utilization, entropy, overflow = (_field(batches, name, len(batches.step)) for name in ROUTING_FIELDS)
        measured = np.isfinite(utilization).any(axis=1) | np.isfinite(entropy).any(axis=1)
        self.batches += len(measured)
        self.measured += int(measured.sum())
        self.unmeasured_modes.update(np.asarray(batches.mode, dtype=object)[~measured].tolist())
        if self.entropy is None and entropy.shape[1] and utilization.shape[1] % entropy.shape[1] == 0 \
                and measured.any():
            self._size(entropy.shape[1], utilization.shape[1] // entropy.shape[1])
        if self.entropy is None:
            return []
        width = self.layers * self.experts
        utilization = _fitted(utilization, width)
        entropy, overflow = _fitted(entropy, self.layers), _fitted(overflow, self.layers)
        self._add_utilization(np.asarray(batches.step), utilization, measured)
        return [entropy, overflow, spread_of(utilization, self.layers)]

    def _size(self, layers: int, experts: int) -> None:
        self.layers, self.experts = layers, experts
        self.utilization = StepMatrix(layers * experts, self._capacity)
        self.entropy = self._store.late_column(width=layers, dtype=np.float32)
        self.overflow = self._store.late_column(width=layers, dtype=np.float32)
        self.spread = self._store.late_column()
        self.last_routed = np.full(layers * experts, -1, dtype=np.int64)

    def _add_utilization(self, steps: np.ndarray, utilization: np.ndarray, measured: np.ndarray) -> None:
        store = self.utilization
        # Steps must increase: a step logged again (it should not be) is not stored twice.
        floor = store.last_step if store.last_step is not None else np.iinfo(np.int64).min
        before = np.maximum.accumulate(np.concatenate([[floor], steps[:-1]]))
        keep = measured & (steps > before)
        steps, utilization = steps[keep], utilization[keep]
        store.append(steps, utilization)
        used = utilization > 0
        if used.any():
            latest = len(steps) - 1 - np.argmax(used[::-1], axis=0)  # per column, the last row it was used in
            self.last_routed = np.where(used.any(axis=0), np.maximum(self.last_routed, steps[latest]),
                                        self.last_routed)

    def add_event(self, event: RunEvent) -> None:
        dead = dead_expert(event)
        if dead is not None:  # the latest notice for an expert replaces an earlier one
            self._dead[(dead.layer, dead.name)] = dead

    # -- reading ----------------------------------------------------------------------------------
    def dead_now(self, names: Sequence[str]) -> list[DeadExpert]:
        """The experts said to be dead that have had no token since (`names`: the experts' names,
        in column order), by layer and expert."""
        names = list(names)
        out = []
        for (layer, name), dead in self._dead.items():
            if name in names and 0 <= layer < self.layers and len(names) == self.experts:
                if self.last_routed[layer * self.experts + names.index(name)] > dead.step:
                    continue  # it got tokens again
            out.append(dead)
        order = {name: index for index, name in enumerate(names)}
        return sorted(out, key=lambda d: (d.layer, order.get(d.name, len(order)), d.name))

    def window_mean(self, last_steps: int) -> np.ndarray | None:
        """(L, E + G): each expert's mean utilization over the last `last_steps` steps stored; None before any."""
        if self.utilization is None or not len(self.utilization):
            return None
        return self.utilization.window_mean(slice(None), last_steps).reshape(self.layers, self.experts)

    def note(self) -> str:
        """What the tab says about what it cannot show: a run logged before routing was measured, a run
        trained only in geometric, gaps where the geometric step trained. "" when there is nothing to say."""
        if not self.batches:
            return ""
        geometric = Mode.GEOMETRIC.value
        if not self.measured:
            return GEOMETRIC_ONLY_NOTE if self.unmeasured_modes == {geometric} else OLD_RUN_NOTE
        notes = [GEOMETRIC_GAPS_NOTE] if geometric in self.unmeasured_modes else []
        if self.unmeasured_modes - {geometric}:
            notes.append(OLD_GAPS_NOTE)
        return " ".join(notes)


def _field(batches: "BatchColumns", name: str, count: int) -> np.ndarray:
    value = getattr(batches, name, None)
    if value is None:
        return np.full((count, 0), np.nan)
    return np.asarray(value, dtype=np.float64).reshape(count, -1)


def _fitted(rows: np.ndarray, width: int) -> np.ndarray:
    """`rows` if `width` wide, else NaN rows of that width (a chunk that has not measured them)."""
    return rows if rows.shape[1] == width else np.full((len(rows), width), np.nan)


# -- what compared runs draw: one value per batch of each run ---------------------------------------
def mean_entropy(series: "RunSeries") -> np.ndarray:
    """Per batch, the mean over layers of the normalised routing entropy (NaN where not measured)."""
    routing = series.routing
    return _mean_over_layers(routing.entropy.view()) if routing.entropy is not None else np.full(len(series), np.nan)


def mean_overflow(series: "RunSeries") -> np.ndarray:
    """Per batch, the mean over layers of the fraction of routed slots over capacity."""
    routing = series.routing
    return _mean_over_layers(routing.overflow.view()) if routing.overflow is not None else np.full(len(series), np.nan)


def utilization_spread(series: "RunSeries") -> np.ndarray:
    """Per batch, the utilization spread (see the module's docstring)."""
    routing = series.routing
    return routing.spread.view() if routing.spread is not None else np.full(len(series), np.nan)
