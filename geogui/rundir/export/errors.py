"""The error every exporter raises, apart from the exporters, so that none imports another for it."""

from __future__ import annotations


class ExportError(ValueError):
    """The export could not be written; the message names the target and the reason."""
