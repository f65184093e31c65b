from __future__ import annotations

import itertools

import numpy as np
import pytest

from geogui.gui.plots.style import curve_color

MIN_DELTA_E = 30.0  # CIE76; about 2.3 is a just-noticeable difference, 30 reads as "another colour"


def cie_lab(color) -> np.ndarray:
    """sRGB (D65) to CIE L*a*b*."""
    rgb = np.array([color.redF(), color.greenF(), color.blueF()])
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


@pytest.mark.parametrize("count", [2, 4, 8])
def test_every_pair_of_curve_colours_is_far_apart(qapp, count):
    """E0…E3 and G0…G3 (and up to eight compared runs): no two colours can be taken for each other."""
    labs = [cie_lab(curve_color(i, count)) for i in range(count)]
    closest = min(float(np.linalg.norm(a - b)) for a, b in itertools.combinations(labs, 2))
    assert closest >= MIN_DELTA_E


def test_curve_colours_are_dark_enough_for_a_white_ground(qapp):
    assert all(cie_lab(curve_color(i, 8))[0] <= 75 for i in range(8))
