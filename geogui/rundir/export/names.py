"""What exported columns and tags call the presentations and experts: the run's expert names (E0…E3,
G0…G3), as the plots do, so that `angle_E2_d1` in a CSV is the curve labelled E2 on the plot and
`util_l1_G0` is the cell of layer 1, column G0 on the utilization heatmap."""

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


def utilization_names(model: ModelSettings) -> list[str]:
    """`l<layer>_<expert>` for every (MoE layer, expert), layer-major, as the records hold them."""
    return [f"l{layer}_{name}" for layer in range(model.n_layers) for name in model.expert_names]


def similarity_pairs(model: ModelSettings) -> list[tuple[int, int]]:
    """The (p, q) with p < q of the presentations' similarity matrix, row by row: the matrix is
    symmetric with 1 on its diagonal, so its upper triangle is all it says."""
    count = model.presentations
    return [(p, q) for p in range(count) for q in range(p + 1, count)]


def similarity_names(model: ModelSettings) -> list[str]:
    """`<presentation>_<presentation>` for each of `similarity_pairs`: E0_E1, E0_E2, …, G2_G3."""
    names = presentation_names(model)
    return [f"{names[p]}_{names[q]}" for p, q in similarity_pairs(model)]
