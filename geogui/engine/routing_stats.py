"""What each MoE layer's router did in one step, computed on the host from the step's one transfer.

The device sends only the routed slots per (layer, expert) (`LossTerms.routing.slot_counts`); every
number here is a few numpy operations on those 4 x 8 counts, so measuring them costs the step no
device op and no sync. Per layer, with n the experts routable in it (primaries and woken ghosts):

utilization[l, e]  slots[l, e] / (slots in layer l / n): 1 = the expert's fair share, 0 = dead
                   (routable, yet chosen for no token), NaN = a dormant ghost (it cannot be chosen)
entropy[l]         -sum_e f log f / log n over the routable experts, f = slots[l, e] / slots in l:
                   1 = perfectly even, lower = fewer experts take the work (with top-k = 2 the least
                   it can be is log 2 / log n: two experts take every slot)
overflow[l]        the fraction of the layer's slots that landed on a primary expert beyond its
                   capacity (Switch Transformer's capacity_factor * slots / primaries): what the
                   ghosts' wake-up rule smooths into `saturation`

`DeadExperts` watches utilization from step to step and says once when a routable expert has had
no token for `patience` consecutive routed steps (it says so again only after it has been used again).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LayerRouting:
    utilization: np.ndarray  # (L, E + G)
    entropy: np.ndarray  # (L,)
    overflow: np.ndarray  # (L,)


def layer_routing(slots: np.ndarray, routable: np.ndarray, capacity_factor: float, num_primary: int) -> LayerRouting:
    """slots (L, E + G) routed slots per layer and expert; routable (L, E + G) bool. A few numpy
    calls on a 4 x 8 array (no errstate, no Python loop): it runs once per step on the host."""
    slots = np.asarray(slots, dtype=np.float64)
    routable = np.asarray(routable, dtype=bool)
    total = np.maximum(slots.sum(axis=1), 1.0)  # a batch always routes slots; 1 keeps 0 / 0 away
    live = routable.sum(axis=1)
    share = slots / total[:, None]
    utilization = share * live[:, None]
    utilization[~routable] = np.nan
    logs = np.log(share, out=np.zeros_like(share), where=share > 0)
    entropy = -(share * logs).sum(axis=1) / np.log(np.maximum(live, 2))
    entropy[live < 2] = np.nan  # one routable expert: no choice was made
    capacity = capacity_factor * total / num_primary
    overflow = np.maximum(slots[:, :num_primary] - capacity[:, None], 0.0).sum(axis=1) / total
    return LayerRouting(utilization, entropy, overflow)


class DeadExperts:
    """Counts, per (layer, expert), the routed steps in a row with utilization 0."""

    def __init__(self, layers: int, experts: int, patience: int) -> None:
        self.patience = patience
        self._idle = np.zeros((layers, experts), dtype=np.int64)
        self._told = np.zeros((layers, experts), dtype=bool)

    def update(self, utilization: np.ndarray) -> list[tuple[int, int, int]]:
        """One routed step's utilization; returns (layer, expert, idle steps) for each expert that
        has just been dead for `patience` steps. A dormant ghost (NaN) is not counted."""
        if not self.patience:
            return []
        dead = utilization == 0  # NaN compares False: a dormant ghost is neither dead nor alive
        self._idle = np.where(dead, self._idle + 1, 0)
        self._told &= dead
        newly = (self._idle >= self.patience) & ~self._told
        self._told |= newly
        return [(int(layer), int(expert), int(self._idle[layer, expert])) for layer, expert in np.argwhere(newly)]
