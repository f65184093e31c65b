"""User files, read strictly: every problem becomes a one-line `DataError` naming the file, because
the GUI shows that line to the user and a traceback would tell them nothing."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from geogui.engine.data.records import RECORD_FIELDS, format_record


class DataError(ValueError):
    """A data file that cannot be trained on; str() is one line naming the file and the problem."""


_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"),
    (b"\xfe\xff", "UTF-16 (big-endian)"),
)


# A data file is read into memory whole (bytes, text, then tokens): beyond this it is refused.
MAX_DATA_BYTES = 2 * 2**30

# Bytes that do not occur in text (tab, newline, form feed and carriage return do).
_CONTROL_BYTES = tuple(b for b in range(32) if b not in (9, 10, 12, 13)) + (127,)


def read_training_text(path: Path) -> str:
    """Read .txt as text and .json / .jsonl as {question, reasoning, answer} records; sniff anything else.

    A JSON list may also hold plain strings, each taken as a text of its own; records with missing
    fields are skipped, and only a file with no usable entry at all is an error.
    """
    path = Path(path)
    text = _read_utf8_text(path)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return text
    if suffix == ".json":
        return _render_entries(path, _parse_json(path, text))
    if suffix == ".jsonl":
        return _render_entries(path, _parse_jsonl(path, text))
    return _sniff(path, text)


def _read_utf8_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_DATA_BYTES:
            raise DataError(f"{path}: file is {size / 2**30:.1f} GiB; training data is read into memory whole, "
                            f"at most {MAX_DATA_BYTES / 2**30:.0f} GiB")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            raise DataError(f"{path}: file is {encoding} encoded (byte-order mark found); save it as UTF-8")
    raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is harmless; drop it
    if not raw.strip():
        raise DataError(f"{path}: file is empty" if not raw else f"{path}: file contains only whitespace")
    if b"\x00" in raw:
        if _looks_like_utf16(raw):
            raise DataError(f"{path}: file looks like UTF-16 without a byte-order mark; save it as UTF-8")
        raise DataError(f"{path}: binary file (contains NUL bytes), not text")
    controls = sum(raw.count(bytes((b,))) for b in _CONTROL_BYTES)
    if controls > 0.05 * len(raw):
        raise DataError(f"{path}: binary file (mostly non-text bytes), not text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None


def _looks_like_utf16(raw: bytes) -> bool:
    """ASCII text in UTF-16 has a NUL in every other byte."""
    sample = raw[:4096]
    even, odd = sample[0::2], sample[1::2]
    return max(even.count(0), odd.count(0)) > 0.4 * len(sample) / 2


def _parse_json(path: Path, text: str) -> list[Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, list):
        raise DataError(
            f"{path}: expected a JSON list of {{question, reasoning, answer}} records, got a {_json_type(data)}"
        )
    return data


def _parse_jsonl(path: Path, text: str) -> list[Any]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: malformed JSONL at line {number}: {exc.msg}") from None
    return entries


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _render_entries(path: Path, entries: list[Any]) -> str:
    """Records and plain strings to training text; skipped entries are fine, no usable one is not."""
    texts: list[str] = []
    missing: Counter[str] = Counter()
    for entry in entries:
        if isinstance(entry, str):
            if entry.strip():
                texts.append(entry.strip() + "\n\n")
            continue
        if not isinstance(entry, dict):
            continue
        fields = {name: _field_text(entry.get(name)) for name in RECORD_FIELDS}
        absent = [name for name, value in fields.items() if value is None]
        if absent:
            missing.update(absent)
            continue
        texts.append(format_record(fields["question"], fields["reasoning"], fields["answer"]))
    text = "".join(texts)
    if text.strip():
        return text
    if not entries:
        raise DataError(f"{path}: contains no records")
    if missing:
        names = ", ".join(f"'{name}'" for name in RECORD_FIELDS if missing[name])
        raise DataError(
            f"{path}: no usable records: none of the {len(entries)} entries has text for all of "
            f"question, reasoning and answer (missing: {names})"
        )
    raise DataError(
        f"{path}: no usable records: expected {{question, reasoning, answer}} objects or strings, "
        f"found {_json_type(entries[0])} entries"
    )


def _field_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # a numeric answer is still an answer
    return None


def _sniff(path: Path, text: str) -> str:
    """Unknown suffix: records if the file parses as JSON or JSONL records, else plain text."""
    if text.lstrip()[:1] not in ("[", "{"):
        return text
    for parse in (_parse_json, _parse_jsonl):
        try:
            return _render_entries(path, parse(path, text))
        except DataError:
            continue
    return text
