"""Write and read Apple icon files (.icns) whose images are PNGs.

An .icns file is the magic ``icns`` and the file's length, then a run of chunks, each a four-letter
type, its length (header included, big-endian) and its data. Since macOS 10.7 a chunk's data may be a
whole PNG file; the types below are the PNG ones. No ``TOC `` chunk is written: it is optional
(macOS reads the chunks without it), and Qt's reader distrusts the one Pillow and ``iconutil`` write.
"""

from __future__ import annotations

import struct

# chunk type -> pixel size of the PNG it holds (the @2x types hold the next size's pixels)
PNG_TYPES: dict[bytes, int] = {
    b"icp4": 16,
    b"icp5": 32,
    b"ic11": 32,  # 16@2x
    b"icp6": 64,
    b"ic12": 64,  # 32@2x
    b"ic07": 128,
    b"ic08": 256,
    b"ic13": 256,  # 128@2x
    b"ic09": 512,
    b"ic14": 512,  # 256@2x
    b"ic10": 1024,  # 512@2x
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_HEADER = struct.Struct(">4sI")


class IcnsError(ValueError):
    pass


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    if not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise IcnsError("not a PNG file")
    return struct.unpack(">II", png[16:24])


def build_icns(pngs_by_size: dict[int, bytes]) -> bytes:
    """An .icns holding, for every PNG type whose size is given, that PNG."""
    chunks = []
    for kind, size in PNG_TYPES.items():
        png = pngs_by_size.get(size)
        if png is None:
            continue
        if png_size(png) != (size, size):
            raise IcnsError(f"{kind.decode()} needs a {size}x{size} PNG, got {png_size(png)}")
        chunks.append(_HEADER.pack(kind, _HEADER.size + len(png)) + png)
    if not chunks:
        raise IcnsError("no PNG of a size an .icns can hold")
    body = b"".join(chunks)
    return _HEADER.pack(b"icns", _HEADER.size + len(body)) + body


def read_icns(data: bytes) -> dict[bytes, bytes]:
    """Chunk type -> data, for every chunk of an .icns; checks every length."""
    magic, total = _HEADER.unpack_from(data, 0)
    if magic != b"icns" or total != len(data):
        raise IcnsError(f"not an .icns file (magic {magic!r}, length {total} of {len(data)} bytes)")
    chunks: dict[bytes, bytes] = {}
    offset = _HEADER.size
    while offset < total:
        kind, length = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > total:
            raise IcnsError(f"chunk {kind!r} at {offset} overruns the file")
        chunks[kind] = data[offset + _HEADER.size: offset + length]
        offset += length
    return chunks
