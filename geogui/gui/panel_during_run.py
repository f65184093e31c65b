"""The settings panel while a run trains here.

The panel then shows that run's settings, locked, with the mode and penalty-weight changes made live
(a resumed run's settings replace what the panel held). What the panel held before Start or Resume is
kept and comes back when the run ends: a change made to one run, or the settings of a run resumed,
never become the next run's settings unseen.
"""

from __future__ import annotations

from typing import Any

from geogui.gui.settings_form.panel import SettingsPanel


class PanelDuringRun:
    def __init__(self, panel: SettingsPanel) -> None:
        self.panel = panel
        self._before: dict[str, dict[str, Any]] | None = None

    def keep(self) -> None:
        """A run is about to start: keep what the panel holds, as typed."""
        self._before = self.panel.raw_values()

    def give_back(self) -> list[str]:
        """The run has ended: put back what was kept; the titles of the fields that differed."""
        before, self._before = self._before, None
        if before is None:
            return []
        now = self.panel.raw_values()
        changed = [self.panel.title_of(section, field) for section, fields in before.items()
                   for field, value in fields.items() if now[section][field] != value]
        if changed:
            self.panel.set_raw_values(before)
        return changed
