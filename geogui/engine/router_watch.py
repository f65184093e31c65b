"""What the trainer does with each step's routing after the step's one transfer, on the host: the
per-layer numbers for the record (`routing_stats`), the ghosts' wake-up rule, and the notice of an
expert that has stayed dead. Nothing here touches the device."""

from __future__ import annotations

from geogui.engine.metrics import EventKind, RunEvent
from geogui.engine.model import MoETransformer
from geogui.engine.routing_stats import DeadExperts, LayerRouting, layer_routing
from geogui.settings import ModelSettings


class RouterWatch:
    def __init__(self, cfg: ModelSettings, dead_expert_steps: int) -> None:
        self.cfg = cfg
        self.dead = DeadExperts(cfg.n_layers, cfg.presentations, dead_expert_steps)

    def after_step(self, model: MoETransformer, step: int, layer_slots) -> tuple[LayerRouting | None, list[RunEvent]]:
        """The step's routing numbers (None when routing was forced) and what to tell the user. The
        numbers are of the experts routable during the step: ghosts wake after they are taken."""
        if layer_slots is None:
            return None, []
        cfg, layers = self.cfg, model.moe_layers
        routable = [layer.live_experts for layer in layers]
        routing = layer_routing(layer_slots, routable, cfg.capacity_factor, cfg.num_experts)
        names = cfg.expert_names
        events = [RunEvent(step, EventKind.EXPERT_DEAD, f"layer {layer}: expert {names[expert]} has had no tokens "
                                                       f"for {idle} steps")
                  for layer, expert, idle in self.dead.update(routing.utilization)]
        for index, (layer, overflow) in enumerate(zip(layers, routing.overflow)):
            woke = layer.update_ghosts(float(overflow))
            if woke is not None:
                events.append(RunEvent(step, EventKind.GHOST_WOKE, f"layer {index}: ghost expert "
                                       f"{names[cfg.num_experts + woke]} woke (primary experts saturated)"))
        return routing, events
