"""MS-OVBA compression (specification [MS-OVBA] §2.4.1), owned here.

The `ms-ovba-compression` package computes the maximum match length wrongly and corrupts some
inputs; the algorithm is small and fully specified, and the tests prove it against oletools'
decompressor.
"""

from __future__ import annotations

CHUNK = 4096
_MAX_CANDIDATES = 128  # bounded search keeps long runs of spaces fast; output stays valid


def _bit_count(difference: int) -> int:
    """Bits used for the offset when `difference` bytes of the chunk are already decompressed."""
    return max((difference - 1).bit_length(), 4)


def _compress_chunk(chunk: bytes) -> bytes:
    n = len(chunk)
    body = bytearray()
    positions: dict[bytes, list[int]] = {}
    pos = 0

    def remember(i: int) -> None:
        if i + 3 <= n:
            positions.setdefault(chunk[i:i + 3], []).append(i)

    while pos < n:
        flag_at = len(body)
        body.append(0)
        flags = 0
        for bit in range(8):
            if pos >= n:
                break
            best_len, best_off = 0, 0
            if pos + 3 <= n:
                bit_count = _bit_count(pos)
                max_len = min((0xFFFF >> bit_count) + 3, n - pos)
                candidates = positions.get(chunk[pos:pos + 3], ())
                for cand in reversed(candidates[-_MAX_CANDIDATES:]):  # nearest first
                    length = 3
                    while length < max_len and chunk[cand + length] == chunk[pos + length]:
                        length += 1
                    if length > best_len:
                        best_len, best_off = length, pos - cand
                        if length == max_len:
                            break
            if best_len >= 3:
                token = ((best_off - 1) << (16 - bit_count)) | (best_len - 3)
                body += token.to_bytes(2, "little")
                flags |= 1 << bit
                for i in range(pos, pos + best_len):
                    remember(i)
                pos += best_len
            else:
                remember(pos)
                body.append(chunk[pos])
                pos += 1
        body[flag_at] = flags

    if len(body) <= CHUNK:
        header = 0xB000 | (len(body) + 2 - 3)  # compressed flag, signature 0b011, size - 3
        return header.to_bytes(2, "little") + bytes(body)
    # incompressible: a raw chunk always holds 4096 bytes (the specification pads with zeros)
    return (0x3000 | (CHUNK + 2 - 3)).to_bytes(2, "little") + chunk.ljust(CHUNK, b"\0")


def compress(data: bytes) -> bytes:
    """CompressedContainer for `data`: signature byte 0x01 followed by one chunk per 4096 bytes."""
    out = bytearray(b"\x01")
    for start in range(0, len(data), CHUNK):
        out += _compress_chunk(data[start:start + CHUNK])
    return bytes(out)


def decompress(data: bytes) -> bytes:
    """Decompress a CompressedContainer (used at run time, where oletools is not installed)."""
    if not data or data[0] != 1:
        raise ValueError("MS-OVBA: sıkıştırılmış kapsayıcı 0x01 ile başlamıyor")
    out = bytearray()
    pos = 1
    while pos + 2 <= len(data):
        header = int.from_bytes(data[pos:pos + 2], "little")
        end = min(pos + (header & 0x0FFF) + 3, len(data))
        pos += 2
        chunk_start = len(out)
        if not header & 0x8000:
            out += data[pos:pos + CHUNK]
            pos += CHUNK
            continue
        while pos < end:
            flags = data[pos]
            pos += 1
            for bit in range(8):
                if pos >= end:
                    break
                if flags & (1 << bit):
                    token = int.from_bytes(data[pos:pos + 2], "little")
                    pos += 2
                    bit_count = _bit_count(len(out) - chunk_start)
                    length = (token & (0xFFFF >> bit_count)) + 3
                    offset = (token >> (16 - bit_count)) + 1
                    if offset > len(out) - chunk_start:
                        raise ValueError("MS-OVBA: geçersiz kopya göstergesi")
                    for _ in range(length):
                        out.append(out[-offset])
                else:
                    out.append(data[pos])
                    pos += 1
    return bytes(out)
