"""geogui: train a Mixture-of-Experts LM with Geometric Constrained Learning and watch it, live."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("geogui")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# The macOS bundle identifier (reverse DNS) of geogui.app; packaging/ builds the app under it.
BUNDLE_IDENTIFIER = "org.geogui.geogui"
