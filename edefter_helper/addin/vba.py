"""Reading and replacing module source in a vbaProject.bin ([MS-OVBA] §2.3.4)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from edefter_helper.addin import cfb, ovba


@dataclass(frozen=True)
class Module:
    name: str
    stream: str  # stream name below the VBA storage
    offset: int  # where the compressed source starts inside the module stream


@dataclass(frozen=True)
class Project:
    codepage: int
    modules: tuple[Module, ...]

    @property
    def encoding(self) -> str:
        return "utf-8" if self.codepage == 65001 else f"cp{self.codepage}"


def parse_dir(compressed_dir: bytes) -> Project:
    """Code page and modules (name, stream, source offset) from the compressed `VBA/dir` stream."""
    data = ovba.decompress(compressed_dir)
    pos, codepage = 0, 1252
    modules: list[Module] = []
    name = stream = None
    offset = 0
    while pos + 6 <= len(data):
        rec_id, size = struct.unpack_from("<HI", data, pos)
        pos += 6
        if rec_id == 0x0009:  # PROJECTVERSION: the size field says 4, the record holds 6 bytes
            size = 6
        body = data[pos:pos + size]
        pos += size
        if rec_id == 0x0003:
            codepage = struct.unpack("<H", body)[0]
        elif rec_id == 0x0019:  # MODULENAME starts a module record
            name, stream, offset = body.decode(_enc(codepage), "replace"), None, 0
        elif rec_id == 0x001A:
            stream = body.decode(_enc(codepage), "replace")
        elif rec_id == 0x0031:
            offset = struct.unpack("<I", body)[0]
        elif rec_id == 0x002B and name is not None:  # module terminator
            modules.append(Module(name, stream or name, offset))
            name = None
        elif rec_id == 0x0010:  # end of the dir stream
            break
    return Project(codepage, tuple(modules))


def _enc(codepage: int) -> str:
    return "utf-8" if codepage == 65001 else f"cp{codepage}"


def read_modules(vba_bin: bytes) -> dict[str, str]:
    """Module name -> source text (CRLF kept, Attribute lines included)."""
    cf = cfb.CompoundFile(vba_bin)
    project = parse_dir(cf.stream("VBA/dir"))
    out = {}
    for m in project.modules:
        raw = cf.stream(f"VBA/{m.stream}")
        out[m.name] = ovba.decompress(raw[m.offset:]).decode(project.encoding, "replace")
    return out


def replace_module_source(vba_bin: bytes, module: str, source: str) -> bytes:
    """`vba_bin` with the source of `module` replaced; the bytes before the module's source
    offset and every other stream stay as they were."""
    cf = cfb.CompoundFile(vba_bin)
    project = parse_dir(cf.stream("VBA/dir"))
    found = [m for m in project.modules if m.name == module]
    if not found:
        raise KeyError(module)
    m = found[0]
    path = f"VBA/{m.stream}"
    old = cf.stream(path)
    # keep the line ending the module already uses: xlwings ships its module with LF only
    current = ovba.decompress(old[m.offset:])
    text = source.replace("\r\n", "\n")
    if b"\r\n" in current:
        text = text.replace("\n", "\r\n")
    new = old[:m.offset] + ovba.compress(text.encode(project.encoding))
    return cfb.rewrite(vba_bin, {path: new})
