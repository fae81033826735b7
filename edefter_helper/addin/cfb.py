"""A small reader and writer for compound files ([MS-CFB], version 3, 512-byte sectors).

olefile can only read; the VBA project needs one stream rewritten. The writer keeps every
directory entry (names, tree links, colours, CLSIDs, timestamps) as it was and lays the
streams out again, so every stream but the edited one stays byte-identical.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

SIGNATURE = bytes.fromhex("d0cf11e0a1b11ae1")
FREESECT, ENDOFCHAIN, FATSECT, DIFSECT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFC
NOSTREAM = 0xFFFFFFFF
SECTOR, MINI_SECTOR, MINI_CUTOFF = 512, 64, 4096
STORAGE, STREAM, ROOT = 1, 2, 5

_ENTRY = struct.Struct("<64sHBBIII16sIQQIQ")  # 128 bytes


@dataclass(frozen=True)
class Entry:
    name: str
    kind: int  # 0 unused, 1 storage, 2 stream, 5 root
    color: int
    left: int
    right: int
    child: int
    clsid: bytes
    state: int
    created: int
    modified: int
    start: int
    size: int

    def pack(self) -> bytes:
        raw = self.name.encode("utf-16-le")
        name_len = len(raw) + 2 if self.name else 0
        return _ENTRY.pack(raw.ljust(64, b"\0"), name_len, self.kind, self.color, self.left,
                           self.right, self.child, self.clsid, self.state, self.created,
                           self.modified, self.start, self.size)


class CompoundFile:
    """Directory entries and the bytes of every stream, read from a compound file."""

    def __init__(self, data: bytes):
        if data[:8] != SIGNATURE:
            raise ValueError("Birleşik belge (OLE) imzası yok")
        sector_shift, mini_shift = struct.unpack_from("<HH", data, 30)
        self.sector_size = 1 << sector_shift
        (n_fat, first_dir, _, cutoff, first_minifat, n_minifat, first_difat,
         n_difat) = struct.unpack_from("<IIIIIIII", data, 44)
        self.mini_size, self.cutoff = 1 << mini_shift, cutoff
        self._data = data
        fat_sectors = list(struct.unpack_from("<109I", data, 76))
        sect = first_difat
        while n_difat and sect not in (ENDOFCHAIN, FREESECT):
            words = struct.unpack_from(f"<{self.sector_size // 4}I", self._sector(sect))
            fat_sectors += words[:-1]
            sect = words[-1]
            n_difat -= 1
        fat_sectors = [s for s in fat_sectors if s not in (FREESECT, ENDOFCHAIN)][:n_fat]
        fat_bytes = b"".join(self._sector(s) for s in fat_sectors)
        self.fat = list(struct.unpack(f"<{len(fat_bytes) // 4}I", fat_bytes))
        dir_bytes = self._chain(first_dir)
        self.entries = [self._entry(dir_bytes[i:i + 128]) for i in range(0, len(dir_bytes), 128)]
        minifat_bytes = self._chain(first_minifat) if n_minifat else b""
        self.minifat = list(struct.unpack(f"<{len(minifat_bytes) // 4}I", minifat_bytes))
        root = self.entries[0]
        self._ministream = self._chain(root.start)[:root.size] if root.size else b""

    def _sector(self, n: int) -> bytes:
        start = (n + 1) * self.sector_size
        return self._data[start:start + self.sector_size]

    def _chain(self, start: int) -> bytes:
        out, seen, sect = [], set(), start
        while sect not in (ENDOFCHAIN, FREESECT):
            if sect in seen or sect >= len(self.fat):
                raise ValueError("Birleşik belgede bozuk sektör zinciri")
            seen.add(sect)
            out.append(self._sector(sect))
            sect = self.fat[sect]
        return b"".join(out)

    @staticmethod
    def _entry(raw: bytes) -> Entry:
        (name, name_len, kind, color, left, right, child, clsid, state, created, modified, start,
         size) = _ENTRY.unpack(raw)
        text = name[:max(name_len - 2, 0)].decode("utf-16-le", "replace")
        return Entry(text, kind, color, left, right, child, clsid, state, created, modified, start,
                     size & 0xFFFFFFFF)  # version 3: the high 32 bits may hold garbage

    def read(self, index: int) -> bytes:
        e = self.entries[index]
        if e.kind != STREAM:
            raise ValueError(f"{e.name} bir akış değil")
        if e.size < self.cutoff:
            out, sect = [], e.start
            while sect not in (ENDOFCHAIN, FREESECT):
                out.append(self._ministream[sect * self.mini_size:(sect + 1) * self.mini_size])
                sect = self.minifat[sect]
            return b"".join(out)[:e.size]
        return self._chain(e.start)[:e.size]

    def paths(self) -> dict[str, int]:
        """'VBA/dir' -> entry index, for every stream and storage below the root."""
        out: dict[str, int] = {}

        def walk(index: int, prefix: str) -> None:
            if index == NOSTREAM or index >= len(self.entries):
                return
            e = self.entries[index]
            walk(e.left, prefix)
            walk(e.right, prefix)
            path = prefix + e.name
            out[path] = index
            if e.kind == STORAGE:
                walk(e.child, path + "/")

        walk(self.entries[0].child, "")
        return out

    def stream(self, path: str) -> bytes:
        return self.read(self.paths()[path])


def build(entries: list[Entry], streams: dict[int, bytes]) -> bytes:
    """Write a version-3 compound file: `entries` as the directory (start/size recomputed) and
    `streams` (entry index -> bytes) as the stream contents. Layout is deterministic."""
    ministream = bytearray()
    minifat: list[int] = []
    big: list[tuple[int, bytes]] = []
    entries = list(entries)
    for i, e in enumerate(entries):
        if e.kind != STREAM:
            continue
        data = streams[i]
        if len(data) == 0:
            entries[i] = replace(e, start=ENDOFCHAIN, size=0)
        elif len(data) < MINI_CUTOFF:
            first = len(minifat)
            count = -(-len(data) // MINI_SECTOR)
            minifat += [first + k + 1 for k in range(count - 1)] + [ENDOFCHAIN]
            ministream += data.ljust(count * MINI_SECTOR, b"\0")
            entries[i] = replace(e, start=first, size=len(data))
        else:
            big.append((i, data))

    def sectors(n_bytes: int) -> int:
        return -(-n_bytes // SECTOR)

    while len(entries) % (SECTOR // 128):
        entries.append(Entry("", 0, 0, NOSTREAM, NOSTREAM, NOSTREAM, b"\0" * 16, 0, 0, 0, 0, 0))
    n_dir = sectors(len(entries) * 128)
    n_minifat = sectors(len(minifat) * 4)
    n_mini = sectors(len(ministream))
    n_big = sum(sectors(len(d)) for _, d in big)
    n_fat = 1
    while n_fat * (SECTOR // 4) < n_fat + n_dir + n_minifat + n_mini + n_big:
        n_fat += 1
    if n_fat > 109:
        raise ValueError("Birleşik belge bu yazıcı için fazla büyük")

    fat: list[int] = [FATSECT] * n_fat
    body = bytearray()

    def place(data: bytes) -> int:
        if not data:
            return ENDOFCHAIN
        first = len(fat)
        count = sectors(len(data))
        fat.extend([first + k + 1 for k in range(count - 1)] + [ENDOFCHAIN])
        body.extend(data.ljust(count * SECTOR, b"\0"))
        return first

    dir_at = len(fat)
    fat.extend([dir_at + k + 1 for k in range(n_dir - 1)] + [ENDOFCHAIN])
    body.extend(b"\0" * (n_dir * SECTOR))  # directory filled in below, once starts are known
    minifat_bytes = struct.pack(f"<{len(minifat)}I", *minifat)
    minifat_bytes += b"\xff" * (n_minifat * SECTOR - len(minifat_bytes))
    minifat_at = place(minifat_bytes)
    mini_at = place(bytes(ministream))
    entries[0] = replace(entries[0], start=mini_at if ministream else ENDOFCHAIN,
                         size=len(ministream))
    for i, data in big:
        entries[i] = replace(entries[i], start=place(data), size=len(data))
    directory = b"".join(e.pack() for e in entries)
    body[0:len(directory)] = directory
    fat += [FREESECT] * (n_fat * (SECTOR // 4) - len(fat))

    difat = list(range(n_fat)) + [FREESECT] * (109 - n_fat)
    header = (SIGNATURE + b"\0" * 16
              + struct.pack("<HHHHH6xIIIIIIIII", 0x3E, 3, 0xFFFE, 9, 6, 0, n_fat, dir_at, 0,
                            MINI_CUTOFF, minifat_at, n_minifat, ENDOFCHAIN, 0)
              + struct.pack("<109I", *difat))
    assert len(header) == SECTOR
    fat_bytes = struct.pack(f"<{len(fat)}I", *fat)
    return header + fat_bytes + bytes(body)


def _name_key(name: str) -> tuple[int, str]:
    """[MS-CFB] §2.6.4 order of sibling names: shorter first, then by upper-cased characters."""
    return len(name), name.upper()


def _insert(entries: list[Entry], parent: int, new: int) -> None:
    """Hang entry `new` into the sibling tree below storage `parent` as a black leaf, at its place in
    the [MS-CFB] order; every other link stays as it was (an all-black binary search tree is what
    [MS-CFB] calls the simplest valid tree, and it is how xlwings' own project is laid out)."""
    key = _name_key(entries[new].name)
    if entries[parent].child == NOSTREAM:
        entries[parent] = replace(entries[parent], child=new)
        return
    at = entries[parent].child
    while True:
        here = _name_key(entries[at].name)
        if key == here:
            raise ValueError(f"Birleşik belgede '{entries[new].name}' zaten var")
        side = "left" if key < here else "right"
        nxt = getattr(entries[at], side)
        if nxt == NOSTREAM:
            entries[at] = replace(entries[at], **{side: new})
            return
        at = nxt


def rewrite(data: bytes, changes: dict[str, bytes], *, new: dict[str, bytes] | None = None) -> bytes:
    """The compound file `data` with the streams named in `changes` ('VBA/xlwings') replaced and the
    streams in `new` ('VBA/Sheet3') added below their (existing) storage."""
    cf = CompoundFile(data)
    paths = cf.paths()
    streams = {i: cf.read(i) for i, e in enumerate(cf.entries) if e.kind == STREAM}
    for path, content in changes.items():
        if path not in paths or cf.entries[paths[path]].kind != STREAM:
            raise KeyError(path)
        streams[paths[path]] = content
    entries = [e for e in cf.entries]
    while entries and entries[-1].kind == 0:  # unused padding entries are re-added by build
        entries.pop()
    for path, content in (new or {}).items():
        parent_path, _, name = path.rpartition("/")
        parent = paths.get(parent_path, 0) if parent_path else 0
        if path in paths or (parent_path and (parent_path not in paths
                                              or cf.entries[parent].kind != STORAGE)):
            raise KeyError(path)
        if not 0 < len(name) <= 31 or any(c in name for c in "/\\:!"):
            raise ValueError(f"Geçersiz akış adı: {name!r}")
        entries.append(Entry(name, STREAM, 1, NOSTREAM, NOSTREAM, NOSTREAM, b"\0" * 16, 0, 0, 0,
                             ENDOFCHAIN, 0))
        index = len(entries) - 1
        _insert(entries, parent, index)
        streams[index] = content
        paths[path] = index
    return build(entries, streams)
