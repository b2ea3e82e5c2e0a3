"""NAL units shared by the HEVC (BPG) and VVC bitstream code: Annex-B splitting and payload escaping.

Both standards use the same byte-stream format (H.265 Annex B / H.266 Annex B)
and the same emulation prevention (H.265 §7.4.2, H.266 §7.4.2).
"""

from __future__ import annotations

from typing import NamedTuple


class NalSpan(NamedTuple):
    """Where one NAL unit sits in an Annex-B stream: its start code begins at ``prefix``.

    ``prefix`` includes the leading ``zero_byte`` of a 4-byte start code; the
    unit itself (header and escaped payload) is ``stream[begin:end]``.
    """

    prefix: int
    begin: int
    end: int

    def nal(self, stream: bytes) -> bytes:
        return stream[self.begin : self.end]


def split_annexb(stream: bytes) -> list[NalSpan]:
    """The NAL units of an Annex-B byte stream (``00 00 01`` / ``00 00 00 01`` start codes)."""
    starts = []
    pos = stream.find(b"\x00\x00\x01")
    while pos >= 0:
        starts.append(pos)
        pos = stream.find(b"\x00\x00\x01", pos + 3)
    spans = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(stream)
        # trailing zero bytes belong to the next start code (or are stream padding)
        while end > start + 3 and stream[end - 1] == 0:
            end -= 1
        prefix = start - 1 if start > 0 and stream[start - 1] == 0 else start
        spans.append(NalSpan(prefix, start + 3, end))
    return spans


def escape_rbsp(rbsp: bytes) -> bytes:
    """Insert emulation-prevention bytes so that no ``00 00 0x`` (x ≤ 3) appears in a NAL payload."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def unescape_rbsp(payload: bytes) -> bytes:
    """Remove emulation-prevention bytes (the ``03`` of each ``00 00 03``)."""
    out = bytearray()
    zeros = 0
    for byte in payload:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)
