"""What exported columns and tags call the presentations: the run's expert names (E0…E3, G0…G3), as
the plots do, so that `angle_E2_d1` in a CSV is the curve labelled E2 on the plot."""

from __future__ import annotations

from geogui.settings import ModelSettings


def presentation_names(model: ModelSettings) -> tuple[str, ...]:
    """One name per presentation: the expert it is forced to; p0, p1, … (the names exports used
    before) when the run's settings do not name one expert per presentation."""
    names = model.expert_names
    if len(names) == model.presentations:
        return names
    return tuple(f"p{p}" for p in range(model.presentations))


def angle_names(model: ModelSettings) -> list[str]:
    """`<presentation>_d<i>` for every rotation angle, presentation-major, as the records hold them."""
    return [f"{name}_d{i}" for name in presentation_names(model) for i in range(model.rotation_dimensions)]
