"""NAL-unit payload escaping shared by the HEVC (BPG) and VVC bitstream code (H.265/H.266 §7.4.2)."""

from __future__ import annotations


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
