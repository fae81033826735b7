"""Reading and replacing module source in a vbaProject.bin ([MS-OVBA] §2.3.4)."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from edefter_helper.addin import cfb, ovba


@dataclass(frozen=True)
class Module:
    name: str
    stream: str  # stream name below the VBA storage
    offset: int  # where the compressed source starts inside the module stream
    document: bool = False  # MODULETYPE 0x22: a document (ThisWorkbook, a sheet) or class module


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
    offset, document = 0, False
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
            name, stream, offset, document = body.decode(_enc(codepage), "replace"), None, 0, False
        elif rec_id == 0x001A:
            stream = body.decode(_enc(codepage), "replace")
        elif rec_id == 0x0031:
            offset = struct.unpack("<I", body)[0]
        elif rec_id == 0x0022:  # MODULETYPE: document, class or designer (0x0021: procedural)
            document = True
        elif rec_id == 0x002B and name is not None:  # module terminator
            modules.append(Module(name, stream or name, offset, document))
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


# Excel's worksheet object (VB_Base of a sheet's document module) and the attributes Excel writes
# into every new sheet's module, in its order
SHEET_BASE = "0{00020820-0000-0000-C000-000000000046}"
_DOCUMENT_ATTRIBUTES = (("VB_GlobalNameSpace", "False"), ("VB_Creatable", "False"),
                        ("VB_PredeclaredId", "True"), ("VB_Exposed", "True"),
                        ("VB_TemplateDerived", "False"), ("VB_Customizable", "True"))


def document_source(name: str, base: str = SHEET_BASE) -> str:
    """The source of an empty document module as Excel writes it (attribute lines only, CRLF)."""
    lines = [f'Attribute VB_Name = "{name}"', f'Attribute VB_Base = "{base}"']
    lines += [f"Attribute {key} = {value}" for key, value in _DOCUMENT_ATTRIBUTES]
    return "\r\n".join(lines) + "\r\n"


def _record(rec_id: int, body: bytes) -> bytes:
    return struct.pack("<HI", rec_id, len(body)) + body


def _module_record(name: str, encoding: str) -> bytes:
    """A MODULE record ([MS-OVBA] §2.3.4.2.3.2) of a document module whose stream holds only its
    compressed source (MODULEOFFSET 0, no performance cache)."""
    mbcs, utf16 = name.encode(encoding), name.encode("utf-16-le")
    return (_record(0x0019, mbcs) + _record(0x0047, utf16)  # MODULENAME, MODULENAMEUNICODE
            + _record(0x001A, mbcs) + _record(0x0032, utf16)  # MODULESTREAMNAME (+ its Unicode)
            + _record(0x001C, b"") + _record(0x0048, b"")  # MODULEDOCSTRING (+ its Unicode): none
            + _record(0x0031, struct.pack("<I", 0))  # MODULEOFFSET: the source starts the stream
            + _record(0x001E, struct.pack("<I", 0))  # MODULEHELPCONTEXT
            + _record(0x002C, struct.pack("<H", 0xFFFF))  # MODULECOOKIE: ignored on read
            + _record(0x0022, b"")  # MODULETYPE: document module
            + _record(0x002B, b""))  # terminator


def _add_to_dir(data: bytes, records: bytes, count: int) -> bytes:
    """The decompressed dir stream with `count` more modules: PROJECTMODULES' count raised and the
    MODULE records put before the dir stream's terminator."""
    pos, count_at = 0, None
    while pos + 6 <= len(data):
        rec_id, size = struct.unpack_from("<HI", data, pos)
        if rec_id == 0x0009:
            size = 6
        if rec_id == 0x000F:
            count_at = pos + 6
        if rec_id == 0x0010:
            if count_at is None:
                break
            old = struct.unpack_from("<H", data, count_at)[0]
            out = bytearray(data[:pos] + records + data[pos:])
            struct.pack_into("<H", out, count_at, old + count)
            return bytes(out)
        pos += 6 + size
    raise ValueError("VBA dir akışında modül listesi ya da sonlandırıcı yok")


def _add_to_project_stream(text: str, names: list[str]) -> str:
    """`Document=NAME/&H00000000` after the last module line and a [Workspace] line per module
    ([MS-OVBA] §2.3.1); the rest of the PROJECT stream is kept."""
    lines = text.split("\r\n")
    module_keys = ("Document=", "Module=", "Class=", "BaseClass=", "Package=")
    last = max((i for i, line in enumerate(lines) if line.startswith(module_keys)), default=0)
    lines[last + 1:last + 1] = [f"Document={n}/&H00000000" for n in names]
    if "[Workspace]" in lines:
        at = lines.index("[Workspace]") + 1
        while at < len(lines) and lines[at] and not lines[at].startswith("["):
            at += 1
        lines[at:at] = [f"{n}=0, 0, 0, 0, C" for n in names]
    return "\r\n".join(lines)


def _add_to_projectwm(data: bytes, names: list[str], encoding: str) -> bytes:
    """The PROJECTwm stream ([MS-OVBA] §2.3.3) with a MBCS/UTF-16 name pair per new module."""
    if not data.endswith(b"\0\0"):
        raise ValueError("VBA PROJECTwm akışı sonlandırıcısız")
    pairs = b"".join(n.encode(encoding) + b"\0" + n.encode("utf-16-le") + b"\0\0" for n in names)
    return data[:-2] + pairs + b"\0\0"


def add_document_modules(vba_bin: bytes, names: list[str], base: str = SHEET_BASE) -> bytes:
    """`vba_bin` with an empty document module for each of `names` it does not have yet (a sheet's
    codeName: Excel adds the missing ones itself when it opens the file, and then asks to save it).
    The new streams hold only source (offset 0); the project must keep _VBA_PROJECT's version
    0xFFFF, so that Excel compiles every module from source rather than reading a p-code cache."""
    cf = cfb.CompoundFile(vba_bin)
    project = parse_dir(cf.stream("VBA/dir"))
    have = {m.name.lower() for m in project.modules} | {p.lower() for p in cf.paths()}
    missing = []
    for n in names:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,30}", n):
            raise ValueError(f"Geçersiz modül adı: {n!r}")
        if f"vba/{n}".lower() in have or n.lower() in have or n in missing:
            continue
        missing.append(n)
    if not missing:
        return vba_bin
    enc = project.encoding
    records = b"".join(_module_record(n, enc) for n in missing)
    new_dir = ovba.compress(_add_to_dir(ovba.decompress(cf.stream("VBA/dir")), records, len(missing)))
    text = _add_to_project_stream(cf.stream("PROJECT").decode(enc), missing)
    changes = {"VBA/dir": new_dir, "PROJECT": text.encode(enc),
               "PROJECTwm": _add_to_projectwm(cf.stream("PROJECTwm"), missing, enc)}
    new = {f"VBA/{n}": ovba.compress(document_source(n, base).encode(enc)) for n in missing}
    return cfb.rewrite(vba_bin, changes, new=new)
