"""Settings-file migrations: a file written by an older geogui is brought up to date, step by step,
so that renaming or moving a field never wipes the user's values.

`MIGRATIONS[n]` turns the raw JSON of schema version n into that of version n + 1; `migrate` applies
them in order. A file with no `schema_version` is version 1, the first format. A file from a *newer*
geogui cannot be migrated backwards: `migrate` says so (`newer`) and leaves the values as they are,
so the forgiving loader keeps what this version understands and the strict one refuses the file.

To rename a field in a new schema version N + 1: bump `SCHEMA_VERSION` in `geogui.settings` and add
`MIGRATIONS[N] = lambda raw: rename_field(raw, "run.old_name", "run.new_name")`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Mapping

Migration = Callable[[dict[str, Any]], dict[str, Any]]

FIRST_VERSION = 1
# Version 1 is the first format, so nothing needs migrating yet.
MIGRATIONS: dict[int, Migration] = {}


class MigrationError(ValueError):
    """A schema version that cannot be read at all (not an integer, or older than any migration)."""


@dataclass(frozen=True)
class Migrated:
    raw: dict[str, Any]  # the values, at the current version unless `newer`
    from_version: int
    newer: bool = False  # written by a newer geogui: left as it is

    @property
    def migrated(self) -> bool:
        return not self.newer and self.raw.get("schema_version") != self.from_version


def schema_version_of(raw: Mapping[str, Any]) -> int:
    version = raw.get("schema_version", FIRST_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise MigrationError(f"schema_version must be a whole number, got {version!r}")
    return version


def migrate(raw: Mapping[str, Any], current: int, migrations: Mapping[int, Migration] = MIGRATIONS) -> Migrated:
    """`raw` brought to schema version `current` (a deep copy; `raw` itself is never changed)."""
    version = schema_version_of(raw)
    data = copy.deepcopy(dict(raw))
    if version > current:
        return Migrated(data, version, newer=True)
    for step in range(version, current):
        if step not in migrations:
            raise MigrationError(f"schema version {version} is older than any this geogui can migrate "
                                 f"(no migration from version {step})")
        data = migrations[step](data)
        data["schema_version"] = step + 1
    data["schema_version"] = current
    return Migrated(data, version)


def rename_field(raw: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """Move the value at dotted path `old` (e.g. "run.lr") to `new`, creating sections as needed.
    A value already present at `new` wins: the file was partly written by the newer format."""
    *old_sections, old_key = old.split(".")
    *new_sections, new_key = new.split(".")
    source = raw
    for name in old_sections:
        source = source.get(name)
        if not isinstance(source, dict):
            return raw
    if old_key not in source:
        return raw
    value = source.pop(old_key)
    target = raw
    for name in new_sections:
        target = target.setdefault(name, {})
        if not isinstance(target, dict):
            return raw  # the section is malformed; the loader reports it
    target.setdefault(new_key, value)
    return raw
