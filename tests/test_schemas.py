"""`--schemas DIR` with GİB's packages: the schema loads offline (the 2015 package imports XBRL and
XAdES by http:// although the files are in the folder), and a schema violation — an undeclared root
included — is told apart from broken XML by libxml2's error domain."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lxml import etree

from edefter_helper.engine.schema import SchemaError, load_schema, local_schema_for, schema_id, schema_problem
from edefter_helper.engine.xmlsafe import parser_options
from edefter_helper.samples import write_month

EDEFTER = "http://www.edefter.gov.tr"
ROOTS = {f"{{{EDEFTER}}}defter", f"{{{EDEFTER}}}berat", f"{{{EDEFTER}}}defterraporu"}


# --- fixtures ----------------------------------------------------------------------------------

@pytest.fixture
def no_network(monkeypatch):
    """Any Python-level attempt to reach the network fails the test (the sandbox has none anyway)."""
    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("ağ erişimi bu testte yasak")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.fixture
def current_pkg(shared_dir) -> Path:
    return shared_dir / "schemas" / "edefter"


@pytest.fixture
def pkg2015(tmp_path, shared_dir) -> Path:
    """GİB's 2015 package layout: today's folder with the two 2015 files put over it."""
    old = shared_dir / "schemas" / "edefter-2015"
    if not (old / "edefter.xsd").is_file():
        pytest.skip(f"GİB'in 2015 şema dosyaları yok: {old}")
    folder = tmp_path / "gib-2015"
    shutil.copytree(shared_dir / "schemas" / "edefter", folder)
    for name in ("edefter.xsd", "XAdESv141.xsd"):
        shutil.copy2(old / name, folder / name)
    return folder


@pytest.fixture
def month(tmp_path):
    return write_month(tmp_path / "ay", "4810525635", "2024-01")


def _iterparse(path: Path, schema):
    """As reader.py reads a file: iterparse, end events, the safe options, schema= plugged in.
    Returns (exception or None, parser error log, whether the root element closed)."""
    it = etree.iterparse(str(path), events=("end",), schema=schema, **parser_options())
    closed = False
    try:
        for _, el in it:
            if el.getparent() is None:
                closed = True
    except etree.XMLSyntaxError as exc:
        return exc, it.error_log, closed
    return None, it.error_log, closed


# --- loading -----------------------------------------------------------------------------------

def test_2015_package_needs_the_resolver(pkg2015):
    """Precondition: the 2015 files import by http:// and a plain load cannot compile them."""
    assert b'schemaLocation="http://www.xbrl.org/2003/xbrl-instance-2003-12-31.xsd"' in (
        pkg2015 / "edefter.xsd").read_bytes()
    assert b'schemaLocation="http://uri.etsi.org/01903/v1.3.2/XAdES.xsd"' in (pkg2015 / "XAdESv141.xsd").read_bytes()
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    with pytest.raises(etree.XMLSchemaParseError):
        etree.XMLSchema(etree.parse(str(pkg2015 / "edefter.xsd"), parser))


def test_2015_package_loads_offline(pkg2015, no_network):
    schema = load_schema(pkg2015)
    assert isinstance(schema, etree.XMLSchema)
    assert no_network == []


def test_current_package_loads_offline(current_pkg, no_network):
    assert isinstance(load_schema(current_pkg), etree.XMLSchema)
    assert no_network == []


def test_remote_locations_map_to_files_in_the_folder(pkg2015, tmp_path):
    assert local_schema_for("http://www.xbrl.org/2003/xbrl-instance-2003-12-31.xsd", pkg2015) == \
        pkg2015 / "xbrl-instance-2003-12-31.xsd"
    assert local_schema_for("https://uri.etsi.org/01903/v1.3.2/XAdES.xsd", pkg2015) == pkg2015 / "XAdES.xsd"
    # ETSI's later file name for the same schema, and W3C's dated xmldsig location
    assert local_schema_for("http://uri.etsi.org/01903/v1.3.2/XAdES01903v132-201601.xsd", pkg2015) == \
        pkg2015 / "XAdES.xsd"
    assert local_schema_for("http://www.w3.org/TR/2002/REC-xmldsig-core-20020212/xmldsig-core-schema.xsd",
                            pkg2015) == pkg2015 / "xmldsig-core-schema.xsd"
    # any URL whose last segment is a file of the folder, found below the top level too
    assert local_schema_for("http://www.xbrl.org/int/gl/bus/2006-10-25/gl-bus-2006-10-25.xsd", pkg2015) == \
        pkg2015 / "2006-10-25" / "bus" / "gl-bus-2006-10-25.xsd"
    assert local_schema_for("http://example.invalid/nothere.xsd", pkg2015) is None
    # the top level wins over a same-named file further down
    (tmp_path / "f" / "alt").mkdir(parents=True)
    (tmp_path / "f" / "x.xsd").write_text("<a/>")
    (tmp_path / "f" / "alt" / "x.xsd").write_text("<a/>")
    assert local_schema_for("http://example.org/alt/x.xsd", tmp_path / "f") == tmp_path / "f" / "x.xsd"


_XSD_IMPORTING = """<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:o="urn:other" targetNamespace="urn:main"
           elementFormDefault="qualified">
  <xs:import namespace="urn:other" schemaLocation="{location}"/>
  <xs:element name="kök" type="o:T"/>
</xs:schema>
"""
_OTHER = """<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:other">
  <xs:simpleType name="T"><xs:restriction base="xs:string"/></xs:simpleType>
</xs:schema>
"""


def test_http_import_found_below_the_top_level(tmp_path, no_network):
    folder = tmp_path / "şemalar klasörü"
    (folder / "alt").mkdir(parents=True)
    (folder / "edefter.xsd").write_text(_XSD_IMPORTING.format(location="http://example.org/pkg/alt/other.xsd"),
                                        encoding="utf-8")
    (folder / "alt" / "other.xsd").write_text(_OTHER, encoding="utf-8")
    schema = load_schema(folder)
    assert schema.validate(etree.fromstring('<kök xmlns="urn:main">x</kök>'.encode()))
    assert no_network == []


@pytest.mark.parametrize("location", [
    "http://example.invalid/other/nothere.xsd",
    "https://example.invalid/other/nothere.xsd",
    "ftp://example.invalid/other.xsd",
])
def test_remote_import_without_local_file_is_refused(tmp_path, no_network, location):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "edefter.xsd").write_text(_XSD_IMPORTING.format(location=location), encoding="utf-8")
    with pytest.raises(SchemaError) as info:
        load_schema(folder)
    message = str(info.value)
    assert location in message
    assert "GİB şeması yüklenemedi" in message and "internetten indirilmez" in message
    assert no_network == []


def test_missing_local_import_is_an_error(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "edefter.xsd").write_text(_XSD_IMPORTING.format(location="yok.xsd"), encoding="utf-8")
    with pytest.raises(SchemaError, match="GİB şeması yüklenemedi"):
        load_schema(folder)


def test_unusable_folders(tmp_path):
    with pytest.raises(SchemaError, match="Şema klasörü bulunamadı, edefter.xsd okunamadı"):
        load_schema(tmp_path / "yok")
    with pytest.raises(SchemaError, match="Şema klasöründe edefter.xsd bulunamadı"):
        load_schema(tmp_path)
    (tmp_path / "edefter.xsd").write_text("<xs:schema", encoding="utf-8")
    with pytest.raises(SchemaError, match="GİB şeması yüklenemedi"):
        load_schema(tmp_path)


_PROBE = textwrap.dedent("""
    import sys
    from edefter_helper.engine.schema import SchemaError, load_schema
    load_schema(sys.argv[1])
    try:
        load_schema(sys.argv[2])
    except SchemaError:
        pass
    else:
        raise SystemExit("refused import was accepted")
""")


def _inet_syscalls(trace: Path) -> list[str]:
    return [line for line in trace.read_text(errors="replace").splitlines()
            if ("connect(" in line or "socket(" in line) and ("AF_INET" in line or "AF_INET6" in line)]


def test_no_network_attempt_at_the_system_call_level(pkg2015, tmp_path):
    """libxml2 fetches without Python's socket module: watch the process's own system calls."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace yok; sistem çağrısı düzeyinde ağ denetimi yapılamadı")
    control = tmp_path / "control.txt"
    probe = [sys.executable, "-c", "import socket; s = socket.socket(); s.settimeout(1)\n"
             "try: s.connect(('127.0.0.1', 9))\nexcept OSError: pass"]
    done = subprocess.run([strace, "-f", "-qq", "-e", "trace=socket,connect", "-o", str(control), *probe],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0 or not control.exists() or not _inet_syscalls(control):
        pytest.skip(f"strace burada çalışmıyor: {done.stderr.strip()[:200]}")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "edefter.xsd").write_text(_XSD_IMPORTING.format(location="http://example.invalid/x/nothere.xsd"),
                                     encoding="utf-8")
    trace = tmp_path / "trace.txt"
    done = subprocess.run([strace, "-f", "-qq", "-e", "trace=socket,connect", "-o", str(trace),
                           sys.executable, "-c", _PROBE, str(pkg2015), str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert _inet_syscalls(trace) == []


def test_schema_id(tmp_path, current_pkg):
    assert schema_id(None) == ""
    folder = tmp_path / "s"
    shutil.copytree(current_pkg, folder)
    first = schema_id(folder)
    assert first and first == schema_id(folder)
    (folder / "edefter_ek.xsd").write_bytes((folder / "edefter_ek.xsd").read_bytes() + b"\n")
    assert schema_id(folder) != first


# --- validating and classifying ----------------------------------------------------------------

def test_sample_month_is_valid_under_both_packages(month, current_pkg, pkg2015):
    for pkg in (current_pkg, pkg2015):
        schema = load_schema(pkg)
        for path in month:
            if pkg == pkg2015 and "-DR-" in path.name:
                continue  # the 2015 schema has no defterraporu (next test)
            exc, _, closed = _iterparse(path, schema)
            assert exc is None, (pkg.name, path.name, exc)
            assert closed


def test_dr_under_2015_package_is_a_schema_problem(month, pkg2015):
    dr = month.find("DR", 0)
    exc, log, _ = _iterparse(dr, load_schema(pkg2015))
    assert isinstance(exc, etree.XMLSyntaxError)
    detail = schema_problem(exc, log)
    assert detail is not None
    assert "defterraporu" in detail and "tanımlı değil" in detail
    # the exception alone (its global log copy) and the parser's log alone tell the same
    assert schema_problem(exc) == detail
    assert schema_problem(log) == detail


def test_element_the_schema_forbids_is_a_schema_problem(month, current_pkg, tmp_path):
    schema = load_schema(current_pkg)
    y = month.find("Y", 0)
    data = y.read_bytes()
    assert b"<gl-cor:documentInfo>" in data
    bad = tmp_path / y.name
    bad.write_bytes(data.replace(b"<gl-cor:documentInfo>",
                                 b"<gl-cor:documentInfo><gl-cor:yasak>x</gl-cor:yasak>", 1))
    exc, log, _ = _iterparse(bad, schema)
    assert isinstance(exc, etree.XMLSyntaxError)
    detail = schema_problem(exc, log)
    assert detail is not None and "gl-cor:yasak" in detail and "beklenmiyor" in detail
    # a value outside the schema's list is one as well
    bad.write_bytes(data.replace(b">journal</gl-cor:entriesType>", b">jurnal</gl-cor:entriesType>", 1))
    exc, log, _ = _iterparse(bad, schema)
    assert "jurnal" in (schema_problem(exc, log) or "")


def _damaged(data: bytes) -> dict[str, bytes]:
    return {
        "kesik-sonda": data[:-5],
        "kesik-ortada": data[: len(data) // 2],
        "kesik-başta": data[:200],
        "etiket-uyuşmuyor": data.replace(b"</gl-cor:documentInfo>", b"</gl-cor:documentInfX>", 1),
        "kökten-sonra-çöp": data + b"<x/>",
    }


@pytest.mark.parametrize("kind", ["kesik-sonda", "kesik-ortada", "kesik-başta", "etiket-uyuşmuyor",
                                  "kökten-sonra-çöp"])
def test_broken_xml_is_never_a_schema_problem(month, current_pkg, tmp_path, kind):
    """Broken XML gives None from schema_problem. lxml (6.1, libxml2 2.14) with schema= and
    resolve_entities=False raises nothing for a file cut short before its root closes, so a
    reader must also check that the root element closed — this test holds either way."""
    schema = load_schema(current_pkg)
    y = month.find("Y", 0)
    bad = tmp_path / y.name
    bad.write_bytes(_damaged(y.read_bytes())[kind])
    exc, log, closed = _iterparse(bad, schema)
    if exc is None:
        assert not closed, "broken file parsed as complete"
    else:
        assert schema_problem(exc, log) is None, str(exc)
        assert schema_problem(exc) is None
        assert schema_problem(log) is None
    # without a schema the parser itself reports it, and it is no schema problem either
    it = etree.iterparse(str(bad), events=("end",), **parser_options())
    with pytest.raises(etree.XMLSyntaxError) as info:
        for _ in it:
            pass
    assert schema_problem(info.value, it.error_log) is None


def test_truncated_file_with_internal_entities_raises_and_is_not_a_schema_problem(month, current_pkg, tmp_path):
    schema = load_schema(current_pkg)
    y = month.find("Y", 0)
    bad = tmp_path / y.name
    bad.write_bytes(y.read_bytes()[:-5])
    options = dict(parser_options(), resolve_entities="internal")
    it = etree.iterparse(str(bad), events=("end",), schema=schema, **options)
    with pytest.raises(etree.XMLSyntaxError) as info:
        for _ in it:
            pass
    assert schema_problem(info.value, it.error_log) is None
    assert schema_problem(info.value) is None


def test_earlier_schema_errors_do_not_leak_into_a_later_verdict(month, current_pkg, pkg2015, tmp_path):
    """The exception's error_log is a copy of the thread's log and still holds the DR's schema error;
    the next, truncated file must not be taken for a schema problem because of it."""
    dr = month.find("DR", 0)
    exc, log, _ = _iterparse(dr, load_schema(pkg2015))
    assert schema_problem(exc, log)
    y = month.find("Y", 0)
    bad = tmp_path / y.name
    bad.write_bytes(y.read_bytes().replace(b"</gl-cor:documentInfo>", b"</gl-cor:documentInfX>", 1))
    it = etree.iterparse(str(bad), events=("end",), **parser_options())
    with pytest.raises(etree.XMLSyntaxError) as info:
        for _ in it:
            pass
    assert schema_problem(info.value) is None
    assert schema_problem(info.value, it.error_log) is None
