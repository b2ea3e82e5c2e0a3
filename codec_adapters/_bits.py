"""Bit and byte I/O of the BPG and HEVC syntax: BPG's ue7 varints, MSB-first bit readers and writers.

Pure functions on bytes. Reading errors raise
:class:`~sursmr_core.errors.CorruptBitstreamError` (every reader here parses
BPG files, hence the ``bpg:`` prefix); writing a value that does not fit is a
programming error (:class:`ValueError`).
"""

from __future__ import annotations

from sursmr_core.errors import CorruptBitstreamError

# --- byte-level varints ---------------------------------------------------------------


def write_ue7(value: int) -> bytes:
    """BPG's ue7: big-endian 7-bit groups, all but the last byte with the top bit set."""
    if not 0 <= value < 1 << 32:
        raise ValueError(f"ue7 value {value} is outside 0..2^32-1")
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(groups))


def read_ue7(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """Read a ue7(32) at ``pos``; returns ``(value, next_pos)``. Non-shortest forms are refused (spec 2)."""
    value = 0
    for count in range(5):
        if pos >= len(data):
            raise CorruptBitstreamError(f"bpg: file ends inside {what}")
        byte = data[pos]
        pos += 1
        if count == 0 and byte == 0x80:
            raise CorruptBitstreamError(f"bpg: {what} is not in its shortest ue7 form")
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            if value >= 1 << 32:
                break
            return value, pos
    raise CorruptBitstreamError(f"bpg: {what} does not fit in 32 bits")


# --- bit-level reading and writing -------------------------------------------------------


class BitReader:
    """MSB-first reader over an RBSP (emulation prevention already removed)."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0  # in bits
        self.what = what

    @property
    def bits_left(self) -> int:
        return 8 * len(self.data) - self.pos

    def u(self, n: int) -> int:
        if n > self.bits_left:
            raise CorruptBitstreamError(f"bpg: {self.what} is truncated")
        value = 0
        for _ in range(n):
            value = (value << 1) | ((self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def flag(self) -> bool:
        return self.u(1) == 1

    def ue(self) -> int:
        """Exp-Golomb ue(v), at most 32 bits of value."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise CorruptBitstreamError(f"bpg: bad Exp-Golomb code in {self.what}")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)


class BitWriter:
    """MSB-first writer; :meth:`rbsp` / :meth:`aligned` close the bit string."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> None:
        if value < 0 or value >= 1 << n:
            raise ValueError(f"{value} does not fit in {n} bits")
        self.bits.extend((value >> (n - 1 - i)) & 1 for i in range(n))

    def flag(self, value: bool) -> None:
        self.u(1, int(value))

    def ue(self, value: int) -> None:
        code = value + 1
        length = code.bit_length()
        self.u(length - 1, 0)
        self.u(length, code)

    def _pack(self, bits: list[int]) -> bytes:
        out = bytearray()
        for i in range(0, len(bits), 8):
            chunk = bits[i : i + 8]
            chunk += [0] * (8 - len(chunk))
            out.append(int("".join(map(str, chunk)), 2))
        return bytes(out)

    def aligned(self) -> bytes:
        """The bits padded with zeros to a byte boundary (BPG's ``trailing_bits``)."""
        return self._pack(self.bits)

    def rbsp(self) -> bytes:
        """The bits closed with ``rbsp_trailing_bits`` (a one, then zeros to a byte boundary)."""
        return self._pack([*self.bits, 1])
